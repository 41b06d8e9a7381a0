"""Classification heads whose cross-entropy trains the embedding: additive angular margin (AAM, ArcFace)."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from wespeaker_avkd.registry import PROJECTIONS
from wespeaker_avkd.utils.schema import ConfigError

# Floor of sin^2(theta) before the square root: sqrt has an infinite slope at 0 (cos = +-1).
SIN2_EPS = 1e-12


@PROJECTIONS.register("arc_margin")
class ArcMarginProduct(nn.Module):
    """AAM head: (B, D) embeddings + (B,) labels -> (B, C) logits s*cos(theta_y + m) / s*cos(theta_j).

    When not `easy_margin` (WeSpeaker default), the target logit past theta + m > pi (cos theta <= th =
    cos(pi - m)) falls back to cos(theta) - mm with mm = m*sin(pi - m), keeping it monotone in theta; with
    `easy_margin` the margin applies only where cos(theta) > 0. `continuous_fallback=True` uses current
    WeSpeaker's variant cos(theta) - (1 + cos(pi - m)) instead of the th/mm trick.
    """

    def __init__(self, embed_dim: int, num_class: int, scale: float = 32.0, margin: float = 0.2,
                 easy_margin: bool = False, continuous_fallback: bool = False) -> None:
        """`weight` is a (num_class, embed_dim) Parameter, xavier-uniform initialised as in WeSpeaker."""
        super().__init__()
        if embed_dim <= 0 or num_class <= 0:
            raise ConfigError(f"projection_args: embed_dim and num_class (the training data's speaker count: "
                              f"is its utt2spk empty?) must be positive, got {embed_dim}, {num_class}")
        self.embed_dim = embed_dim
        self.num_class = num_class
        self.scale = float(scale)
        self.easy_margin = easy_margin
        self.continuous_fallback = continuous_fallback
        self.weight = nn.Parameter(torch.empty(num_class, embed_dim))
        nn.init.xavier_uniform_(self.weight)
        self.update(margin)

    def update(self, margin: float = 0.2) -> None:
        """Set the margin m (radians) and its derived constants; called by MarginScheduler."""
        self.margin = float(margin)
        self.cos_m = math.cos(margin)
        self.sin_m = math.sin(margin)
        self.th = math.cos(math.pi - margin)
        if self.continuous_fallback:
            self.mm = 1.0 + math.cos(math.pi - margin)
        else:
            self.mm = math.sin(math.pi - margin) * margin

    def cosine(self, emb: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, C) cosine between each embedding and each class row of `weight`, in [-1, 1]."""
        return F.linear(F.normalize(emb), F.normalize(self.weight)).clamp(-1.0, 1.0)

    def forward(self, emb: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """(B, D) embeddings, (B,) int labels -> (B, C) scaled logits with the margin on each target column."""
        if emb.dim() != 2 or emb.shape[1] != self.embed_dim:
            raise ValueError(f"arc_margin expects (batch, {self.embed_dim}) embeddings, got {tuple(emb.shape)}")
        cosine = self.cosine(emb)
        target_cos = cosine.gather(1, label.view(-1, 1).long())  # (B, 1): only targets need cos(theta + m)
        sine = torch.sqrt((1.0 - target_cos * target_cos).clamp(min=SIN2_EPS))
        phi = target_cos * self.cos_m - sine * self.sin_m
        if self.easy_margin:
            phi = torch.where(target_cos > 0, phi, target_cos)
        else:
            phi = torch.where(target_cos > self.th, phi, target_cos - self.mm)
        logits = cosine.scatter(1, label.view(-1, 1).long(), phi)
        return logits * self.scale

    def extra_repr(self) -> str:
        """Shown by print(module)."""
        return (f"embed_dim={self.embed_dim}, num_class={self.num_class}, scale={self.scale}, "
                f"margin={self.margin}, easy_margin={self.easy_margin}")
