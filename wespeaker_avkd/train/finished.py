"""What a re-run of a training may reuse, decided before it writes anything.

A re-run of bin.train continues (or, when finished, keeps) the checkpoints of its exp dir only when they were made
from the same inputs: the config (compared typed, key by key, RESUME_SAFE_KEYS aside: train/resume.py), the same
speaker list, and the same training data by *content*: the stamp exp_dir/train_inputs.json records the data dir's
tables, the files they list (wavs or feature arks, face images, the fusion teacher's input embeddings) and the KD
teacher's export, as extraction's stamp does (inference/extract.py). A corpus regenerated at the same path is
refused, naming what changed. num_epochs and num_avg may change on a resumed or finished run only where they act:
more epochs continue the training, fewer than those already trained are refused, and a num_avg whose epochs pruning
already removed is refused instead of silently averaging fewer. --overwrite sets the old models/ and train_state/
aside under unique names and deletes them only after the new training completed.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from wespeaker_avkd import checkpoint as ckpt
from wespeaker_avkd.utils.fingerprint import data_dir_fingerprint, listed_files_fingerprint, read_stamp
from wespeaker_avkd.utils.kaldi_tables import split_offset
from wespeaker_avkd.utils.schema import ConfigError

logger = logging.getLogger("wespeaker_avkd.train")

TRAIN_STAMP = "train_inputs.json"
TRAIN_STAMP_VERSION = 1
TEACHER_FILES = ("xvector.scp", "projection_weight.npy", "spk2id")
# dataloader_args that do not change what is trained (the others, batch_size and drop_last, do).
LOADER_LOGISTICS = ("num_workers", "pin_memory", "prefetch_factor")


def train_stamp_path(exp_dir: str) -> str:
    """exp_dir/train_inputs.json: the content stamp of the data the checkpoints were trained on."""
    return os.path.join(exp_dir, TRAIN_STAMP)


def training_inputs(train_data: str, listed_files: list[str] | None, teacher_scp: str | None) -> dict[str, Any]:
    """The content fingerprint of a training's data: the data dir's tables, the files they list (stat; None
    when unknown) and, for a KD student, the teacher export's files and the embeddings its scp names."""
    record: dict[str, Any] = {
        "version": TRAIN_STAMP_VERSION,
        "train_data": data_dir_fingerprint(train_data),
        "listed_files": listed_files_fingerprint(listed_files) if listed_files is not None else None,
        "teacher": None,
    }
    if teacher_scp is not None:
        export = os.path.dirname(os.path.abspath(teacher_scp))
        record["teacher"] = {
            "files": data_dir_fingerprint(export, TEACHER_FILES),
            "listed_files": listed_files_fingerprint(_scp_arks(teacher_scp)),
        }
    return record


def _scp_arks(scp: str) -> list[str]:
    """The ark files the lines of an embedding scp point to (without reading the arks); none when it is absent
    (the loader that reads it names the missing file)."""
    arks: set[str] = set()
    if not os.path.isfile(scp):
        return []
    with open(scp, encoding="utf-8") as f:
        for line in f:
            path, offset = split_offset(line.rstrip("\n").split(" ", 1)[-1])
            if offset is not None:
                arks.add(path)
    return sorted(arks)


def changed_inputs(recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """What differs between two training_inputs records, in words (empty when they agree)."""
    changes = []
    old_tables, new_tables = recorded.get("train_data") or {}, wanted.get("train_data") or {}
    changes += [name for name in sorted(set(old_tables) | set(new_tables))
                if old_tables.get(name) != new_tables.get(name)]
    if recorded.get("listed_files") != wanted.get("listed_files"):
        changes.append("the files its tables list (wavs, feature arks, face images or input embeddings)")
    if recorded.get("teacher") != wanted.get("teacher"):
        changes.append("the KD teacher's export")
    return changes


def check_same_inputs(exp_dir: str, train_data: str, wanted: Callable[[], Mapping[str, Any]]) -> None:
    """Refuse (ConfigError naming what changed) to reuse exp_dir's checkpoints when its stamp records other
    training data; an exp dir without a stamp (made before it existed) passes. `wanted()` gives the current
    training_inputs; it is called only when there is a stamp to compare with."""
    path = train_stamp_path(exp_dir)
    recorded = read_stamp(path)
    if recorded is None:
        return
    current = wanted()
    if recorded.get("version") != current.get("version"):
        return
    changes = changed_inputs(recorded, current)
    if changes:
        raise ConfigError(f"{path}: the checkpoints in {os.path.join(exp_dir, 'models')} were trained on other data "
                          f"than {train_data} holds now (changed: {', '.join(changes)}); use another --exp_dir, or "
                          f"--overwrite to retrain on the new data")


def check_epochs(model_dir: str, num_epochs: int, num_avg: int, saved_config: str) -> None:
    """Refuse (ConfigError) a num_epochs below the epochs model_dir already holds, and a num_avg whose epochs
    up to the newest one were pruned (averaging would silently use fewer); both name the values."""
    found = ckpt.list_checkpoints(model_dir)
    if not found:
        return
    done = max(found)
    if done > num_epochs:
        raise ConfigError(f"{saved_config}: num_epochs {num_epochs} is below the {done} epochs already trained in "
                          f"{model_dir}; the model cannot be untrained: keep num_epochs >= {done}, use another "
                          f"--exp_dir, or --overwrite to retrain")
    needed = [e for e in range(max(1, num_epochs - max(1, num_avg) + 1), num_epochs + 1) if e <= done]
    missing = [e for e in needed if e not in found]
    if missing:
        raise ConfigError(f"{saved_config}: num_avg {num_avg} averages epochs {needed[0]}..{num_epochs}, but "
                          f"{model_dir} no longer holds epochs {missing} (pruned to the run's earlier num_avg); "
                          f"lower num_avg, or --overwrite to retrain")


def changed_batch_keys(diff: Sequence[tuple[str, Any, Any]]) -> list[str]:
    """The keys of a typed config diff (config/serialize.py:config_diff) that change what an epoch trains
    without invalidating the epochs done: dataloader_args other than its logistics (batch_size, drop_last),
    and amp."""
    keys = []
    for key, _, _ in diff:
        section, _, name = key.partition(".")
        if section == "dataloader_args" and name not in LOADER_LOGISTICS or key == "amp":
            keys.append(key)
    return sorted(keys)


def set_aside(path: str) -> str | None:
    """Rename the directory `path` to a fresh unique `<path>.old-XXXXXXXX` beside it (nothing is deleted);
    returns the new name, or None when `path` does not exist."""
    if not os.path.isdir(path):
        return None
    parent, name = os.path.split(os.path.abspath(path))
    target = tempfile.mkdtemp(prefix=f"{name}.old-", dir=parent)
    os.rename(path, target)  # onto the empty fresh dir: atomic, and no other name is ever replaced
    logger.info("--overwrite: %s set aside as %s until the new training completes", path, target)
    return target


def discard(path: str | None) -> None:
    """Delete a directory set aside by set_aside (after its replacement is complete)."""
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(path)
        logger.info("deleted the previous results %s", path)
