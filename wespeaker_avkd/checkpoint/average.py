"""Averaging the last epochs' model files into avg_model.pt (WeSpeaker's average_model step), keyed by content."""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from wespeaker_avkd.checkpoint.model_file import load_model_state
from wespeaker_avkd.checkpoint.paths import list_checkpoints
from wespeaker_avkd.utils.errors import InputValueError
from wespeaker_avkd.utils.fileio import PathLike, atomic_torch_save
from wespeaker_avkd.utils.fingerprint import file_fingerprint, stamp_matches, write_stamp

logger = logging.getLogger(__name__)


def average_state_dicts(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating tensors; integer tensors (BatchNorm counters) are taken from the last."""
    if not states:
        raise ValueError("average_state_dicts: no state dicts given")
    keys = list(states[-1].keys())
    for i, state in enumerate(states):
        if list(state.keys()) != keys:
            diff = set(keys) ^ set(state.keys())
            raise ValueError(f"average_state_dicts: state {i} has different keys: {sorted(diff)[:5]}")
    averaged = {}
    for key in keys:
        last = states[-1][key]
        if torch.is_floating_point(last):
            acc = torch.zeros_like(last, dtype=torch.float64)
            for state in states:
                acc += state[key].to(torch.float64)
            averaged[key] = (acc / len(states)).to(last.dtype)
        else:
            averaged[key] = last.clone()
    return averaged


def average_checkpoints(paths: Sequence[PathLike]) -> dict[str, torch.Tensor]:
    """The flat model state averaging the given epoch model files (files of other models refused, named)."""
    states = [load_model_state(p) for p in paths]
    for path, state in zip(paths, states):
        if set(state) != set(states[-1]):
            diff = sorted(set(state) ^ set(states[-1]))
            raise InputValueError(f"{os.fspath(path)}: its tensors differ from those of {os.fspath(paths[-1])} "
                                  f"(e.g. {', '.join(diff[:3])}): files of different models cannot be averaged")
    return average_state_dicts(states)


def average_stamp_path(out_path: PathLike) -> str:
    """<avg_model.pt>.stamp.json: which checkpoints (by content) and num_avg made the averaged model."""
    return os.fspath(out_path) + ".stamp.json"


def _average_inputs(model_dir: PathLike, num_avg: int) -> dict[str, Any]:
    """The stamp record of averaging the last num_avg checkpoints of model_dir as they are now."""
    found = list_checkpoints(model_dir)
    if not found:
        raise FileNotFoundError(f"no model_N.pt checkpoints in {os.fspath(model_dir)} to average")
    epochs = sorted(found)[-max(1, int(num_avg)):]
    return {"num_avg": int(num_avg), "epochs": epochs,
            "checkpoints": {str(e): file_fingerprint(found[e]) for e in epochs},
            "paths": {str(e): found[e] for e in epochs}}


def average_last(model_dir: PathLike, num_avg: int, out_path: PathLike, force: bool = True) -> list[int]:
    """Average the last `num_avg` epoch checkpoints of model_dir into out_path atomically; returns the epochs.

    A stamp beside out_path records the averaged checkpoints' content fingerprints and num_avg; with
    force=False an existing out_path whose stamp matches is kept (any other num_avg or checkpoint re-averages).
    """
    inputs = _average_inputs(model_dir, num_avg)
    if len(inputs["epochs"]) < int(num_avg):
        logger.warning("%s: num_avg %d but only epochs %s are kept: averaging those", os.fspath(model_dir),
                       int(num_avg), inputs["epochs"])
    wanted = {k: inputs[k] for k in ("num_avg", "epochs", "checkpoints")}
    stamp = average_stamp_path(out_path)
    if not force and os.path.isfile(out_path) and stamp_matches(stamp, dict(wanted, output=file_fingerprint(out_path))):
        return list(inputs["epochs"])
    avg = average_checkpoints([inputs["paths"][str(e)] for e in inputs["epochs"]])
    with contextlib.suppress(FileNotFoundError):
        os.unlink(stamp)  # no stamp while out_path and the stamp disagree
    atomic_torch_save(avg, out_path)
    write_stamp(stamp, dict(wanted, output=file_fingerprint(out_path)))
    return list(inputs["epochs"])
