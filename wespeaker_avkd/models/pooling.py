"""Temporal pooling of frame-level feature maps into one utterance-level vector (WeSpeaker semantics)."""
from __future__ import annotations

import torch
import torch.nn as nn

from wespeaker_avkd.utils.schema import ConfigError

# WeSpeaker adds this inside the square root so a constant channel gives a finite gradient.
STD_EPS = 1e-7


def _time_var(x: torch.Tensor) -> torch.Tensor:
    """Unbiased variance over the last (time) axis; biased (= 0) when only one frame is left."""
    # WeSpeaker's unbiased var is NaN for a single pooled frame (8-frame inputs): fall back to correction 0.
    return torch.var(x, dim=-1, correction=1 if x.shape[-1] > 1 else 0)


class TAP(nn.Module):
    """Temporal average pooling: (B, C, F, T) or (B, D, T) -> (B, C*F) mean over time."""

    def __init__(self, in_dim: int) -> None:
        """`in_dim` is the flattened channel*frequency size of the input."""
        super().__init__()
        self.in_dim = in_dim

    def get_out_dim(self) -> int:
        """Size of the pooled vector."""
        return self.in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ..., T) -> (B, in_dim)."""
        return x.mean(dim=-1).flatten(start_dim=1)


class TSDP(TAP):
    """Temporal standard-deviation pooling: (B, ..., T) -> (B, in_dim) std over time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ..., T) -> (B, in_dim)."""
        return torch.sqrt(_time_var(x) + STD_EPS).flatten(start_dim=1)


class TSTP(TAP):
    """Temporal statistics pooling: (B, ..., T) -> (B, 2*in_dim) = [mean; std] over time (mean first)."""

    def get_out_dim(self) -> int:
        """Size of the pooled vector: mean and std."""
        return 2 * self.in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ..., T) -> (B, 2*in_dim); flattening order (channel, frequency) matches WeSpeaker's seg_1."""
        mean = x.mean(dim=-1).flatten(start_dim=1)
        std = torch.sqrt(_time_var(x) + STD_EPS).flatten(start_dim=1)
        return torch.cat((mean, std), dim=1)


POOLINGS = {"TAP": TAP, "TSDP": TSDP, "TSTP": TSTP}


def build_pooling(name: str, in_dim: int) -> TAP:
    """The pooling layer called `name` (one of POOLINGS) for an `in_dim`-sized frame vector."""
    try:
        return POOLINGS[name](in_dim)
    except KeyError:
        raise ConfigError(f"model_args.pooling_func: unknown pooling {name!r}; known: {', '.join(POOLINGS)}") from None
