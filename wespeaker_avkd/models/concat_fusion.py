"""Concatenation fusion baseline: an MLP over the concatenated audio and visual embeddings."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from wespeaker_avkd.models.fusion_base import FusionBase
from wespeaker_avkd.registry import FUSIONS


@FUSIONS.register("concat")
class ConcatFusion(FusionBase):
    """e = Linear(ReLU(BN(Linear([a; v])))): (B, Da), (B, Dv) -> (B, embed_dim); it has no gate (None)."""

    def __init__(self, audio_dim: int = 512, visual_dim: int = 512, embed_dim: int = 512,
                 hidden_dim: int | None = None, **kwargs: Any) -> None:
        """`hidden_dim` of the MLP (default embed_dim); other kwargs: see FusionBase."""
        super().__init__(audio_dim, visual_dim, embed_dim, **kwargs)
        hidden_dim = hidden_dim or embed_dim
        self.mlp = nn.Sequential(nn.Linear(audio_dim + visual_dim, hidden_dim), nn.BatchNorm1d(hidden_dim),
                                 nn.ReLU(), nn.Linear(hidden_dim, embed_dim))

    def fuse(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, None]:
        """(B, Da), (B, Dv) -> ((B, embed_dim), None)."""
        return self.mlp(torch.cat((audio, visual), dim=1)), None
