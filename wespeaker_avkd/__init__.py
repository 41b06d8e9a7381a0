"""wespeaker_avkd: audio-visual -> single-modality knowledge distillation for person verification."""
from wespeaker_avkd.version import __version__

__all__ = ["__version__"]
