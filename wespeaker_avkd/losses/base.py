"""Common checks of every KD loss: (B, D) student and teacher embeddings, frozen teacher by default."""
from __future__ import annotations

import torch
import torch.nn as nn


class KDLoss(nn.Module):
    """Base of the KD losses: forward(student (B, D), teacher (B', D)) -> scalar; subclasses implement `compute`."""

    # True when the builder must pass the teacher's AAM weight (C, D) as `teacher_weight`.
    needs_teacher_weight = False
    # False when student and teacher batches may differ in size (distribution-level losses).
    paired = True

    def __init__(self, detach_teacher: bool = True) -> None:
        """`detach_teacher`: no gradient flows into the teacher embeddings (the teacher is frozen)."""
        super().__init__()
        self.detach_teacher = detach_teacher

    def _check(self, student: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate shapes; return (student, teacher) with the teacher detached if so configured."""
        name = type(self).__name__
        if student.dim() != 2 or teacher.dim() != 2:
            raise ValueError(f"{name}: expected 2-D (batch, dim) embeddings, got student {tuple(student.shape)}, "
                             f"teacher {tuple(teacher.shape)}")
        if student.shape[1] != teacher.shape[1]:
            raise ValueError(f"{name}: student dim {student.shape[1]} != teacher dim {teacher.shape[1]}; set "
                             f"kd.adapter: true to learn a linear map student -> teacher")
        if self.paired and student.shape[0] != teacher.shape[0]:
            raise ValueError(f"{name}: student batch {student.shape[0]} != teacher batch {teacher.shape[0]}")
        return student, (teacher.detach() if self.detach_teacher else teacher)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """(B, D) student, (B, D) teacher embeddings -> scalar loss."""
        return self.compute(*self._check(student, teacher))

    def compute(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """The loss on validated inputs; implemented by subclasses."""
        raise NotImplementedError
