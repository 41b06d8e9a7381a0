"""Where an experiment's epoch files live: models/model_<N>.pt, train_state/train_state_<N>.pt, the resume point.

Layout (WeSpeaker's): models/model_<N>.pt and models/avg_model.pt are ONE flat state_dict each: the encoder's
keys plus the AAM head's as `projection.*`, exactly what WeSpeaker's load_checkpoint matches tensor for tensor.
The training state of epoch N (kd_adapter: the KD objective's trainable state; optimizer, scheduler, scaler,
margin, epoch, global_step, rng {python, numpy, torch, cuda}) is train_state/train_state_<N>.pt, beside models/
(train_state_dir): models/ holds only WeSpeaker's files, so WeSpeaker's average_model.py (whose glob takes every
*.pt there and parses an epoch number out of `model_<N>.pt`) runs on it. Exp dirs of earlier versions kept the
state in models/; it is read there too and moved out once (migrate_train_states). The teacher's embeddings and
AAM weight are never part of a student's files. Resume uses the newest N with both files.
"""
from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

import torch

from wespeaker_avkd.checkpoint.files import CheckpointLayoutError, save_checkpoint
from wespeaker_avkd.utils.fileio import PathLike

logger = logging.getLogger(__name__)

_MODEL_RE = re.compile(r"^model_(\d+)\.pt$")
_STATE_RE = re.compile(r"^train_state_(\d+)\.pt$")
STATE_DIR_NAME = "train_state"


def checkpoint_path(model_dir: PathLike, epoch: int) -> str:
    """models/model_<epoch>.pt."""
    return os.path.join(os.fspath(model_dir), f"model_{epoch}.pt")


def train_state_dir(model_dir: PathLike) -> str:
    """The training-state dir of an exp's models/ dir: its sibling <exp>/train_state."""
    return os.path.join(os.path.dirname(os.path.abspath(os.fspath(model_dir))), STATE_DIR_NAME)


def train_state_path(model_dir: PathLike, epoch: int) -> str:
    """<exp>/train_state/train_state_<epoch>.pt for model_dir <exp>/models."""
    return os.path.join(train_state_dir(model_dir), f"train_state_{epoch}.pt")


def _list(model_dir: PathLike, pattern: re.Pattern[str], glob_pattern: str) -> dict[int, str]:
    """{epoch: path} of the files of model_dir whose name matches `pattern` (group 1: the epoch)."""
    found = {}
    for path in glob.glob(os.path.join(glob.escape(os.fspath(model_dir)), glob_pattern)):
        match = pattern.match(os.path.basename(path))
        if match:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def list_checkpoints(model_dir: PathLike) -> dict[int, str]:
    """{epoch: path} of the complete epoch model files in model_dir (temporary files are ignored)."""
    return _list(model_dir, _MODEL_RE, "model_*.pt")


def legacy_train_states(model_dir: PathLike) -> dict[int, str]:
    """{epoch: path} of training states inside models/ itself (where versions before train_state/ wrote them)."""
    return _list(model_dir, _STATE_RE, "train_state_*.pt")


def list_train_states(model_dir: PathLike) -> dict[int, str]:
    """{epoch: path} of the training states of model_dir's exp: train_state/, else (an older exp dir) models/."""
    found = legacy_train_states(model_dir)
    found.update(_list(train_state_dir(model_dir), _STATE_RE, "train_state_*.pt"))
    return dict(sorted(found.items()))


def migrate_train_states(model_dir: PathLike) -> list[str]:
    """Move training states an older version left in models/ to train_state/ (one rename each, so a crash
    leaves every file in one of its two readable places); returns the new paths. A state present in both
    places is refused (CheckpointLayoutError naming both): which one is current cannot be told."""
    moved = []
    for epoch, old in legacy_train_states(model_dir).items():
        new = train_state_path(model_dir, epoch)
        if os.path.exists(new):
            raise CheckpointLayoutError(f"{old} and {new} are both training states of epoch {epoch}; remove the one "
                                        f"that is not current (train_state/ is where this version writes)")
        os.makedirs(os.path.dirname(new), exist_ok=True)
        os.replace(old, new)
        moved.append(new)
    if moved:
        logger.info("moved %d training state(s) out of %s into %s", len(moved), os.fspath(model_dir),
                    train_state_dir(model_dir))
    return moved


def last_checkpoint(model_dir: PathLike) -> str | None:
    """Path of the newest epoch model file, or None."""
    found = list_checkpoints(model_dir)
    return found[max(found)] if found else None


def resume_point(model_dir: PathLike) -> int | None:
    """The newest epoch with both model_<N>.pt and train_state_<N>.pt (what a resumed run continues from)."""
    both = set(list_checkpoints(model_dir)) & set(list_train_states(model_dir))
    return max(both) if both else None


def should_save(epoch: int, num_epochs: int, save_epoch_interval: int, num_avg: int) -> bool:
    """Whether epoch's files are written: every save_epoch_interval epochs, and each of the last num_avg."""
    return epoch % max(1, int(save_epoch_interval)) == 0 or epoch > int(num_epochs) - max(1, int(num_avg))


def save_epoch(model_dir: PathLike, epoch: int, model_state: Mapping[str, torch.Tensor],
               train_state: Mapping[str, Any]) -> None:
    """Write train_state_<epoch>.pt, then model_<epoch>.pt (both atomic): a model file with its state marks a
    complete epoch."""
    save_checkpoint(train_state_path(model_dir, epoch), train_state)
    save_checkpoint(checkpoint_path(model_dir, epoch), dict(model_state))
