"""Distribution-level KD (paper Eq. 5-6): multi-kernel Gaussian maximum mean discrepancy between batches."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from wespeaker_avkd.losses.base import KDLoss
from wespeaker_avkd.registry import LOSSES
from wespeaker_avkd.utils.schema import ConfigError


def pairwise_sq_dists(z: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (N, N) squared Euclidean distances, clamped at 0 against rounding."""
    sq = (z * z).sum(dim=1)
    return (sq[:, None] + sq[None, :] - 2.0 * (z @ z.t())).clamp(min=0.0)


def safe_sqrt(value: torch.Tensor, eps: float) -> torch.Tensor:
    """Scalar sqrt(value) above `eps`; below it the line value / sqrt(eps): continuous, 0 at 0, finite slope."""
    value = value.clamp(min=0.0)  # rounding can push a biased MMD^2 of ~0 below zero
    return torch.where(value > eps, torch.sqrt(value.clamp(min=eps)), value / math.sqrt(eps))


@LOSSES.register("mmd")
class MMDLoss(KDLoss):
    """MMD between student batch X (m, D) and teacher batch Y (n, D) with a sum of Gaussian kernels.

    Default (docs/kd_losses.md, DAN convention): rows L2-normalised; base bandwidth b = mean
    off-diagonal squared distance of the pooled [X; Y] (no gradient through b); bandwidths
    b * kernel_mul ** (i - kernel_num // 2), i < kernel_num (b * {1/4, 1/2, 1, 2, 4}); k = exp(-d^2 / bw);
    kernels summed; biased (V-statistic) MMD^2 = mean Kxx + mean Kyy - 2 mean Kxy; loss = sqrt(MMD^2) (linear
    below `eps`, so MMD(X, X) = 0 with a finite gradient).
    Switches: `squared` (return MMD^2), `unbiased` (U-statistic: diagonals left out of Kxx, Kyy; may be < 0,
    so it requires `squared`), `kernel_reduction="mean"`, `bandwidths` (fixed list, replaces the data-driven
    family), `normalize=False`.
    """

    paired = False

    def __init__(self, kernel_num: int = 5, kernel_mul: float = 2.0, bandwidths: Sequence[float] | None = None,
                 squared: bool = False, unbiased: bool = False, kernel_reduction: str = "sum",
                 normalize: bool = True, eps: float = 1e-8, detach_teacher: bool = True) -> None:
        """See the class docstring; below MMD^2 = `eps` the square root is replaced by a line (finite gradient)."""
        super().__init__(detach_teacher)
        if kernel_reduction not in ("sum", "mean"):
            raise ConfigError(f"mmd: kernel_reduction must be 'sum' or 'mean', got {kernel_reduction!r}")
        if unbiased and not squared:
            raise ConfigError("mmd: the unbiased MMD^2 can be negative, so it has no square root; "
                              "set squared: true with unbiased: true")
        if bandwidths is not None and (len(bandwidths) == 0 or min(bandwidths) <= 0):
            raise ConfigError(f"mmd: bandwidths must be a non-empty list of positive numbers, got {bandwidths}")
        if bandwidths is None and kernel_num < 1:
            raise ConfigError(f"mmd: kernel_num must be >= 1, got {kernel_num}")
        self.kernel_num = kernel_num if bandwidths is None else len(bandwidths)
        self.kernel_mul = float(kernel_mul)
        self.bandwidths = None if bandwidths is None else [float(b) for b in bandwidths]
        self.squared = squared
        self.unbiased = unbiased
        self.kernel_reduction = kernel_reduction
        self.normalize = normalize
        self.eps = float(eps)

    def _bandwidths(self, d2: torch.Tensor) -> torch.Tensor:
        """(N, N) squared distances -> (K,) bandwidths, computed without gradient."""
        if self.bandwidths is not None:
            return d2.new_tensor(self.bandwidths)
        with torch.no_grad():
            n = d2.shape[0]
            base = d2.sum() / max(n * n - n, 1)  # diagonal is 0: sum / off-diagonal count
            base = base.clamp(min=torch.finfo(d2.dtype).tiny)
            powers = torch.arange(self.kernel_num, dtype=d2.dtype, device=d2.device) - self.kernel_num // 2
            return base * self.kernel_mul ** powers

    def mmd2(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(m, D), (n, D) -> scalar MMD^2 estimate (biased or unbiased per the switch)."""
        if self.normalize:
            x, y = F.normalize(x, dim=1), F.normalize(y, dim=1)
        m, n = x.shape[0], y.shape[0]
        if self.unbiased and (m < 2 or n < 2):
            raise ValueError(f"mmd: the unbiased estimate needs >= 2 rows per batch, got {m} and {n}")
        d2 = pairwise_sq_dists(torch.cat((x, y), dim=0))
        bw = self._bandwidths(d2)
        kernel = torch.exp(-d2.unsqueeze(0) / bw.view(-1, 1, 1))  # (K, N, N): one exp for all kernels
        kernel = kernel.sum(0) if self.kernel_reduction == "sum" else kernel.mean(0)
        kxx, kyy, kxy = kernel[:m, :m], kernel[m:, m:], kernel[:m, m:]
        if self.unbiased:
            xx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
            yy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
        else:
            xx, yy = kxx.mean(), kyy.mean()
        return xx + yy - 2.0 * kxy.mean()

    def compute(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """(m, D) student, (n, D) teacher -> scalar MMD (or MMD^2 when `squared`)."""
        value = self.mmd2(student, teacher)
        return value if self.squared else safe_sqrt(value, self.eps)
