"""Resuming a training: the saved config compared with the new one (typed, key by key), the training state of
an epoch captured and restored.

exp_dir/config.yaml records the TrainConfig with every default (config/serialize.py). A rerun parses it
(load_saved_config: a key an older config.yaml does not write takes today's default, so such a run resumes
when nothing it wrote changed) and compares it with the new TrainConfig: a key outside RESUME_SAFE_KEYS that
differs, a changed default included, refuses to continue, naming the dotted key and both values.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn

from wespeaker_avkd import checkpoint as ckpt
from wespeaker_avkd.config.serialize import config_diff
from wespeaker_avkd.config.train_config import TrainConfig, load_saved_config
from wespeaker_avkd.systems.builders import kd_trainable_state
from wespeaker_avkd.train import finished
from wespeaker_avkd.utils.errors import NamedError
from wespeaker_avkd.utils.schema import ConfigError
from wespeaker_avkd.utils.state_dict import check_state_dict

# Top-level keys a resumed run may change without invalidating its checkpoints (they do not alter the model or
# data); a dotted key is safe when its first part is.
RESUME_SAFE_KEYS = {"num_epochs", "num_avg", "log_batch_interval", "save_epoch_interval", "keep_checkpoints",
                    "dataloader_args", "eval_dataloader_args", "amp", "tensorboard", "dev_eval"}


class KDStateError(NamedError, ValueError):
    """A training state whose KD adapter does not fit the KD objective being resumed."""


def _changes(diff: list[tuple[str, Any, Any]]) -> str:
    """'key (old there, new here)' of the first difference, '+ N more: ...' for the others."""
    key, old, new = diff[0]
    more = f"; {len(diff) - 1} more: {', '.join(k for k, _, _ in diff[1:])}" if len(diff) > 1 else ""
    return f"{key} was {old!r}, is now {new!r}{more}"


def check_saved_config(saved: str, model_dir: str, cfg: TrainConfig, trained_epochs: int) -> bool:
    """Refuse (ConfigError) to continue checkpoints whose saved config differs from `cfg` in a key outside
    RESUME_SAFE_KEYS, or, on a finished run, in a batch setting that could act only on epochs still to train.
    Returns whether the saved config equals `cfg` (then config.yaml is left as it is)."""
    try:
        old = load_saved_config(saved)
    except ConfigError as err:
        raise ConfigError(f"{saved}: the saved config of the checkpoints in {model_dir} cannot be read by this "
                          f"version ({err}); use another --exp_dir or pass --overwrite to start afresh") from err
    diff = config_diff(old, cfg)
    changed = [d for d in diff if d[0].split(".")[0] not in RESUME_SAFE_KEYS]
    if changed:
        raise ConfigError(f"{saved}: the checkpoints in {model_dir} were trained with a different config "
                          f"({_changes(changed)}); use another --exp_dir or pass --overwrite to start afresh")
    idle = finished.changed_batch_keys(diff)
    if idle and trained_epochs >= cfg.num_epochs:
        raise ConfigError(f"{saved}: the training in {model_dir} is finished ({trained_epochs} epochs); "
                          f"{idle} would change only epochs still to train and none are left: restore "
                          f"them, raise num_epochs to train more, or pass --overwrite to retrain")
    return not diff


def load_kd_state(kd: nn.Module, saved: Mapping[str, torch.Tensor], source: str) -> None:
    """Load a saved KD adapter state strictly: its keys must be exactly the objective's trainable state
    (kd_trainable_state), shapes equal; the teacher's frozen weights stay those of its export."""
    own = kd_trainable_state(kd)
    missing, unexpected = sorted(set(own) - set(saved)), sorted(set(saved) - set(own))
    if missing or unexpected:
        raise KDStateError(f"{source}: kd_adapter holds {sorted(saved)}, the KD objective trains {sorted(own)} "
                           f"(missing {missing}, unexpected {unexpected}); was it trained with another kd "
                           f"block? pass --overwrite to start afresh")
    merged = {**kd.state_dict(), **saved}
    check_state_dict(kd, merged, source, "kd_adapter")  # names and shapes, before anything is copied
    kd.load_state_dict(merged)


def capture_train_state(trainer: Any, epoch: int) -> dict[str, Any]:
    """The training state of `trainer` after `epoch` (all but the model): KD adapter, optimizer, schedule, AMP
    scaler, margin, step counters and RNG states."""
    return {
        "kd_adapter": kd_trainable_state(trainer.kd),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.scaler.state_dict() if trainer.use_amp else None,
        "margin": trainer.margin_scheduler.get_margin(),
        "epoch": epoch,
        "global_step": trainer.global_step,
        "rng": ckpt.capture_rng_state(),
    }


def restore_train_state(trainer: Any, state: Mapping[str, Any], source: str) -> tuple[int, int, Mapping[str, Any]]:
    """Put a capture_train_state record back into trainer's KD adapter, optimizer, schedule and scaler; returns
    (the epoch to start from, the global step, the RNG states to restore when training starts)."""
    if trainer.kd is not None and "kd_adapter" in state:
        load_kd_state(trainer.kd, state["kd_adapter"] or {}, source)
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler"):
        trainer.scaler.load_state_dict(state["scaler"])
    return int(state["epoch"]) + 1, int(state["global_step"]), state["rng"]


def saved_config_path(exp_dir: str) -> str:
    """exp_dir/config.yaml."""
    return os.path.join(exp_dir, "config.yaml")
