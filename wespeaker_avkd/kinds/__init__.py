"""System kinds as objects: the audio student, the visual student and the fusion teacher (see kinds/base.py)."""
from wespeaker_avkd.kinds.audio import AUDIO
from wespeaker_avkd.kinds.base import KINDS, SystemKind, kind_of, register_kind
from wespeaker_avkd.kinds.fusion import FUSION
from wespeaker_avkd.kinds.visual import VISUAL

__all__ = ["AUDIO", "VISUAL", "FUSION", "KINDS", "SystemKind", "kind_of", "register_kind"]
