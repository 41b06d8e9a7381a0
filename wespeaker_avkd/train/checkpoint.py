"""Epoch checkpoints (models/model_N.pt), RNG state capture, resume lookup and checkpoint averaging.

A checkpoint is a dict: model, projection, kd_adapter (the KD objective's trainable state; empty without an
adapter), optimizer, scheduler, margin, epoch, global_step, rng {python, numpy, torch, cuda}. The teacher's
embeddings and AAM weight are never part of it. avg_model.pt holds model + projection only.
"""
from __future__ import annotations

import glob
import os
import random
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from wespeaker_avkd.utils.fileio import atomic_torch_save

PathLike = Union[str, "os.PathLike[str]"]
_MODEL_RE = re.compile(r"^model_(\d+)\.pt$")


def capture_rng_state() -> Dict[str, Any]:
    """Python, numpy, torch CPU and (when present) CUDA generator states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Put back the generator states saved by capture_rng_state."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_path(model_dir: PathLike, epoch: int) -> str:
    """models/model_<epoch>.pt."""
    return os.path.join(os.fspath(model_dir), f"model_{epoch}.pt")


def list_checkpoints(model_dir: PathLike) -> Dict[int, str]:
    """{epoch: path} of the complete epoch checkpoints in model_dir (temporary files are ignored)."""
    found = {}
    for path in glob.glob(os.path.join(os.fspath(model_dir), "model_*.pt")):
        match = _MODEL_RE.match(os.path.basename(path))
        if match:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def last_checkpoint(model_dir: PathLike) -> Optional[str]:
    """Path of the newest epoch checkpoint, or None."""
    found = list_checkpoints(model_dir)
    return found[max(found)] if found else None


def save_checkpoint(path: PathLike, state: Mapping[str, Any]) -> None:
    """Write a checkpoint dict atomically (a crash leaves the previous epoch's files intact)."""
    atomic_torch_save(dict(state), path)


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Read a checkpoint dict on the CPU (RNG states are pickled python objects, hence weights_only=False)."""
    path = os.fspath(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError) as err:
        raise RuntimeError(f"cannot read checkpoint {path}: {err}") from err


def average_state_dicts(states: Sequence[Mapping[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
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


def average_checkpoints(paths: Sequence[PathLike]) -> Dict[str, Any]:
    """avg_model dict {model, projection, epochs} averaging the given epoch checkpoints."""
    loaded = [load_checkpoint(p) for p in paths]
    return {
        "model": average_state_dicts([c["model"] for c in loaded]),
        "projection": average_state_dicts([c["projection"] for c in loaded]),
        "epochs": [int(c["epoch"]) for c in loaded],
    }


def average_last(model_dir: PathLike, num_avg: int, out_path: PathLike) -> List[int]:
    """Average the last `num_avg` epoch checkpoints of model_dir into out_path atomically; returns the epochs."""
    found = list_checkpoints(model_dir)
    if not found:
        raise FileNotFoundError(f"no model_N.pt checkpoints in {os.fspath(model_dir)} to average")
    epochs = sorted(found)[-max(1, int(num_avg)):]
    avg = average_checkpoints([found[e] for e in epochs])
    atomic_torch_save(avg, out_path)
    return epochs
