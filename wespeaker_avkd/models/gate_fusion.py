"""GATE fusion teacher: a gated multimodal unit mixing projected face and voice embeddings per dimension."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from wespeaker_avkd.models.fusion_base import FusionBase
from wespeaker_avkd.registry import FUSIONS


@FUSIONS.register("gate")
class GateFusion(FusionBase):
    """e = z * h_f + (1 - z) * h_a with h_f = W_f f + b_f, h_a = W_a a + b_a (optional tanh) and the gate
    z = sigmoid(W_2 ReLU(BN(W_1 [f; a]))), W_1: (Dv + Da) -> `bottleneck` (8), W_2: bottleneck -> embed_dim.

    f (visual) and a (audio) are L2-normalised first. The gate z (B, embed_dim) in (0, 1) is the weight of
    the face; return_gate=True or gate_values() expose it. Other kwargs: see FusionBase.
    """

    def __init__(self, audio_dim: int = 512, visual_dim: int = 512, embed_dim: int = 512, bottleneck: int = 8,
                 use_tanh: bool = False, **kwargs: Any) -> None:
        """`bottleneck` width of the gate network, `use_tanh` squashes h_f and h_a."""
        super().__init__(audio_dim, visual_dim, embed_dim, **kwargs)
        self.use_tanh = use_tanh
        self.visual_proj = nn.Linear(visual_dim, embed_dim)
        self.audio_proj = nn.Linear(audio_dim, embed_dim)
        self.gate_net = nn.Sequential(nn.Linear(visual_dim + audio_dim, bottleneck), nn.BatchNorm1d(bottleneck),
                                      nn.ReLU(), nn.Linear(bottleneck, embed_dim))

    def fuse(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, Da), (B, Dv) -> ((B, embed_dim) fused, (B, embed_dim) gate z = weight of the face)."""
        h_f, h_a = self.visual_proj(visual), self.audio_proj(audio)
        if self.use_tanh:
            h_f, h_a = torch.tanh(h_f), torch.tanh(h_a)
        z = torch.sigmoid(self.gate_net(torch.cat((visual, audio), dim=1)))
        return z * h_f + (1.0 - z) * h_a, z
