"""Attention fusion (Shon et al. 2019): scalar softmax weights over the two projected modality embeddings."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from wespeaker_avkd.models.fusion_base import FusionBase
from wespeaker_avkd.registry import FUSIONS


@FUSIONS.register("attention")
class AttentionFusion(FusionBase):
    """e = w_a W_a a + w_v W_v v, (w_a, w_v) = softmax(W_s [a; v] + b_s): (B, Da), (B, Dv) -> (B, embed_dim).

    The weights (B, 2), columns (audio, visual), are exposed by return_gate=True / gate_values().
    """

    def __init__(self, audio_dim: int = 512, visual_dim: int = 512, embed_dim: int = 512, **kwargs: Any) -> None:
        """Other kwargs: see FusionBase."""
        super().__init__(audio_dim, visual_dim, embed_dim, **kwargs)
        self.audio_proj = nn.Linear(audio_dim, embed_dim)
        self.visual_proj = nn.Linear(visual_dim, embed_dim)
        self.score = nn.Linear(audio_dim + visual_dim, 2)

    def fuse(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, Da), (B, Dv) -> ((B, embed_dim) fused, (B, 2) softmax weights of audio and visual)."""
        weights = torch.softmax(self.score(torch.cat((audio, visual), dim=1)), dim=1)
        fused = weights[:, :1] * self.audio_proj(audio) + weights[:, 1:] * self.visual_proj(visual)
        return fused, weights
