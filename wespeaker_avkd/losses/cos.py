"""Embedding-level KD (paper Eq. 4): 1 - cosine similarity between paired teacher and student embeddings."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from wespeaker_avkd.losses.base import KDLoss
from wespeaker_avkd.registry import LOSSES
from wespeaker_avkd.utils.schema import ConfigError


@LOSSES.register("cos")
class CosineLoss(KDLoss):
    """Mean over the batch of 1 - cos(e_teacher, e_student); `reduction="sum"` gives the paper's sum."""

    def __init__(self, reduction: str = "mean", detach_teacher: bool = True) -> None:
        """`reduction`: "mean" (default) or "sum" over the batch."""
        super().__init__(detach_teacher)
        if reduction not in ("mean", "sum"):
            raise ConfigError(f"cos: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction

    def compute(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """(B, D), (B, D) -> scalar."""
        dist = 1.0 - F.cosine_similarity(student, teacher, dim=1, eps=1e-8)
        return dist.mean() if self.reduction == "mean" else dist.sum()
