"""Build the optimizer, WeSpeaker's per-iteration learning-rate schedule and the AAM margin schedule of a
parsed config.

The tables (OPTIMIZERS, SCHEDULERS) and the schedule classes live in config/optimizers.py, where the schema
checks a config against them; this module builds from them.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from wespeaker_avkd.config.optimizers import OPTIMIZERS, SCHEDULERS, ConstantLR, ExponentialDecrease, lookup
from wespeaker_avkd.config.sections import MarginUpdate
from wespeaker_avkd.config.train_config import TrainConfig
from wespeaker_avkd.models.margin_scheduler import MarginScheduler
from wespeaker_avkd.utils.schema import ConfigError, Where

__all__ = ["OPTIMIZERS", "SCHEDULERS", "ConstantLR", "ExponentialDecrease", "build_optimizer", "build_scheduler",
           "margin_scheduler"]


def build_optimizer(name: str, params: Iterable[torch.nn.Parameter], optimizer_args: Mapping[str, Any],
                    initial_lr: float) -> torch.optim.Optimizer:
    """OPTIMIZERS[name] over `params`; the schedule sets the lr every iteration, `initial_lr` is a placeholder."""
    args = dict(optimizer_args or {})
    args.pop("lr", None)  # the scheduler owns the learning rate
    cls = lookup(OPTIMIZERS, "optimizer", name, Where().key("optimizer"))
    try:
        return cls(params, lr=initial_lr, **args)
    except TypeError as err:
        raise ConfigError(f"config key 'optimizer_args' for {name}: {err}") from err


def build_scheduler(name: str, optimizer: torch.optim.Optimizer, num_epochs: int, epoch_iter: int,
                    scheduler_args: Mapping[str, Any]) -> ExponentialDecrease:
    """The named schedule from config `scheduler` + `scheduler_args`."""
    cls = lookup(SCHEDULERS, "scheduler", name, Where().key("scheduler"))
    try:
        return cls(optimizer, num_epochs=num_epochs, epoch_iter=epoch_iter, **dict(scheduler_args))
    except TypeError as err:
        raise ConfigError(f"config key 'scheduler_args' for {name}: {err}") from err


def margin_scheduler(projection: torch.nn.Module, epoch_iter: int, cfg: TrainConfig) -> MarginScheduler:
    """The AAM margin schedule: cfg.margin_update, else the head's own margin fixed for every iteration."""
    update = cfg.margin_update
    if update is None:
        margin = float(cfg.projection.args["margin"])  # the head's default filled in by the schema
        update = MarginUpdate(initial_margin=margin, final_margin=margin, increase_start_epoch=1, fix_start_epoch=1)
    return MarginScheduler(projection, epoch_iter, increase_start_epoch=update.increase_start_epoch,
                           fix_start_epoch=update.fix_start_epoch, initial_margin=update.initial_margin,
                           final_margin=update.final_margin, increase_type=update.increase_type,
                           update_margin=update.update_margin)
