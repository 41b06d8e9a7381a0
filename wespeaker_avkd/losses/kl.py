"""Label-level KD (paper Eq. 2-3): KL between the teacher's and the student's speaker posteriors."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from wespeaker_avkd.losses.base import KDLoss
from wespeaker_avkd.registry import LOSSES
from wespeaker_avkd.utils.schema import ConfigError

REDUCTIONS = ("batchmean", "sum")


@LOSSES.register("kl")
class KLDivLoss(KDLoss):
    """KL(P_teacher || P_student), P = softmax(cos(e, W) / T) with the teacher's frozen AAM weight W (C, D).

    Defaults (docs/kd_losses.md): T = 1/32, batch-mean reduction, no T^2 factor. Switches:
    `t_squared` multiplies by T^2 (Hinton), `reduction="sum"` sums over the batch (paper's Eq. 3),
    `cross_entropy=True` returns -sum P_t log P_s instead (= KL + teacher entropy; same gradient).
    """

    needs_teacher_weight = True

    def __init__(self, teacher_weight: torch.Tensor, temperature: float = 0.03125, t_squared: bool = False,
                 reduction: str = "batchmean", cross_entropy: bool = False, detach_teacher: bool = True) -> None:
        """`teacher_weight` (C, D) is stored L2-normalised row-wise as a buffer (frozen, never trained)."""
        super().__init__(detach_teacher)
        teacher_weight = torch.as_tensor(teacher_weight)
        if teacher_weight.dim() != 2:
            raise ValueError(f"kl: teacher_weight must be (num_class, dim), got {tuple(teacher_weight.shape)}")
        if temperature <= 0:
            raise ConfigError(f"kl: temperature must be > 0, got {temperature}")
        if reduction not in REDUCTIONS:
            raise ConfigError(f"kl: reduction must be one of {REDUCTIONS}, got {reduction!r}")
        # Only the rows' directions matter (cosines): normalise once here, not on every call.
        weight = teacher_weight.detach()
        weight = weight if weight.is_floating_point() else weight.float()
        self.register_buffer("teacher_weight", F.normalize(weight, dim=1).clone())
        self.temperature = float(temperature)
        self.t_squared = t_squared
        self.reduction = reduction
        self.cross_entropy = cross_entropy

    def log_posterior(self, emb: torch.Tensor) -> torch.Tensor:
        """(B, D) embeddings -> (B, C) log softmax(cos(e, W) / T), one matmul."""
        weight = self.teacher_weight.to(emb.dtype)
        return F.log_softmax(F.normalize(emb, dim=1) @ weight.t() / self.temperature, dim=1)

    def compute(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """(B, D), (B, D) -> scalar KL (or cross-entropy) per the switches."""
        if student.shape[1] != self.teacher_weight.shape[1]:
            raise ValueError(f"kl: embedding dim {student.shape[1]} != teacher weight dim "
                             f"{self.teacher_weight.shape[1]}; set kd.adapter: true")
        log_p_s = self.log_posterior(student)
        with torch.set_grad_enabled(torch.is_grad_enabled() and teacher.requires_grad):
            log_p_t = self.log_posterior(teacher)
        p_t = log_p_t.exp()
        per_class = -p_t * log_p_s if self.cross_entropy else p_t * (log_p_t - log_p_s)
        loss = per_class.sum()
        if self.reduction == "batchmean":
            loss = loss / student.shape[0]
        if self.t_squared:
            loss = loss * self.temperature ** 2
        return loss
