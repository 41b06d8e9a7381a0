"""The optimizer and learning-rate schedule tables: what a config may name, checked by the schema against the
constructors' signatures (config/train_config.py) and built by the trainer (train/optim.py).

The schedules are WeSpeaker's per-iteration ones (ExponentialDecrease, constant); they live here, below the
trainer, because the schema checks `scheduler_args` against their constructors without importing train/.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from wespeaker_avkd.utils.schema import ConfigError, Where, suggest

# config `optimizer` -> torch class; build_optimizer builds from this table, the schema checks against it.
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "SGD": torch.optim.SGD, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}


class ExponentialDecrease:
    """WeSpeaker's schedule: lr(i) = c(i) * lr0 * exp(i / I * ln(lr_final / lr0)), set before every iteration i.

    I = num_epochs * epoch_iter. During the first warm_up_epoch * epoch_iter iterations the coefficient c(i) rises
    linearly: from 0 to scale_ratio when warm_from_zero, else from 1 to scale_ratio (when scale_ratio > 1);
    afterwards c = scale_ratio. Iterations are counted from 0.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, num_epochs: int, epoch_iter: int, initial_lr: float,
                 final_lr: float, warm_up_epoch: float = 6, scale_ratio: float = 1.0,
                 warm_from_zero: bool = False) -> None:
        if initial_lr <= 0 or final_lr <= 0:
            raise ConfigError(f"scheduler_args: initial_lr ({initial_lr}) and final_lr ({final_lr}) must be > 0")
        self.optimizer = optimizer
        self.initial_lr = float(initial_lr)
        self.final_lr = float(final_lr)
        self.scale_ratio = float(scale_ratio)
        self.warm_from_zero = bool(warm_from_zero)
        self.max_iter = max(1, int(num_epochs * epoch_iter))
        self.warm_up_iter = int(warm_up_epoch * epoch_iter)
        self.current_iter = 0

    def coefficient(self, it: int) -> float:
        """The warm-up / multi-process coefficient c(it)."""
        if it < self.warm_up_iter:
            if self.warm_from_zero:
                return self.scale_ratio * it / self.warm_up_iter
            if self.scale_ratio > 1:
                return (self.scale_ratio - 1) * it / self.warm_up_iter + 1.0
        return self.scale_ratio

    def lr_at(self, it: int) -> float:
        """Learning rate of iteration `it`."""
        decay = math.exp((it / self.max_iter) * math.log(self.final_lr / self.initial_lr))
        return self.coefficient(it) * self.initial_lr * decay

    def step(self, current_iter: int | None = None) -> float:
        """Set the lr of iteration `current_iter` (default: the next one) on every param group; return it."""
        if current_iter is not None:
            self.current_iter = current_iter
        lr = self.lr_at(self.current_iter)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.current_iter += 1
        return lr

    def get_lr(self) -> float:
        """The lr currently set on the optimizer."""
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        """Position in the schedule (for exact resume)."""
        return {"current_iter": self.current_iter}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the position saved by state_dict."""
        self.current_iter = int(state["current_iter"])


class ConstantLR(ExponentialDecrease):
    """A constant lr (after the same optional warm-up): ExponentialDecrease with final_lr = initial_lr."""

    def __init__(self, optimizer: torch.optim.Optimizer, num_epochs: int, epoch_iter: int, initial_lr: float,
                 warm_up_epoch: float = 0, scale_ratio: float = 1.0, warm_from_zero: bool = False,
                 **unused: Any) -> None:
        super().__init__(optimizer, num_epochs, epoch_iter, initial_lr, initial_lr, warm_up_epoch, scale_ratio,
                         warm_from_zero)


SCHEDULERS = {"ExponentialDecrease": ExponentialDecrease, "ConstantLR": ConstantLR}
# Scheduler arguments a schedule's constructor accepts but does not use.
SCHEDULER_UNREAD = {"ConstantLR": {"final_lr": "ConstantLR keeps initial_lr (after the warm-up)"}}


def lookup(table: Mapping[str, Any], kind: str, name: Any, where: Where) -> Any:
    """table[name] (an optimizer or scheduler class), or ConfigError naming the key with the known names."""
    if not isinstance(name, str) or name not in table:
        raise where.error(f"unknown {kind} {name!r}{suggest(name, table)} (known: {', '.join(table)})")
    return table[name]
