"""Epoch checkpoints (models/model_N.pt), RNG state capture, resume lookup and checkpoint averaging.

A checkpoint is a dict: model, projection, kd_adapter (the KD objective's trainable state; empty without an
adapter), optimizer, scheduler, margin, epoch, global_step, rng {python, numpy, torch, cuda}. The teacher's
embeddings and AAM weight are never part of it. avg_model.pt holds model + projection only.

Every file is read with torch.load(weights_only=True): a checkpoint holds tensors and plain containers only
(the numpy RNG state is stored as a tuple of plain values and an int64 tensor), so loading one can never run
code. A file that needs the full unpickler is refused with a message naming it and the converter.
"""
from __future__ import annotations

import contextlib
import glob
import logging
import os
import pickle
import random
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from wespeaker_avkd.utils.fileio import atomic_torch_save
from wespeaker_avkd.utils.fingerprint import file_fingerprint, read_stamp, stamp_matches, write_stamp

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
_MODEL_RE = re.compile(r"^model_(\d+)\.pt$")


def capture_rng_state() -> Dict[str, Any]:
    """Python, numpy, torch CPU and (when present) CUDA generator states."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    # numpy's state as plain values + a tensor: the only types a weights_only loader accepts.
    numpy_state = (str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                   float(cached))
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Put back the generator states saved by capture_rng_state."""
    random.setstate(tuple(state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    np.random.set_state((name, keys.astype(np.uint32), int(pos), int(has_gauss), float(cached)))
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


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint file holds objects that only the full (code-running) unpickler could rebuild."""


CONVERTER_HINT = ("if it is a checkpoint written by an older version of this toolkit and you trust its origin, "
                  "convert it once with: python -m wespeaker_avkd.bin.convert_checkpoint --trust_pickle "
                  "--src {path} --dst NEW_FILE")


def torch_load_safe(path: PathLike) -> Any:
    """torch.load(path, weights_only=True) on the CPU; refuses (UnsafeCheckpointError naming the file) anything
    beyond tensors and plain containers, and turns unreadable files into a RuntimeError naming the file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()
        detail = next((line.strip() for line in first if "GLOBAL" in line or "Unsupported" in line), "")
        raise UnsafeCheckpointError(
            f"refusing to load checkpoint {path}: it holds objects other than tensors and plain containers, and "
            f"loading it would run code from the file ({detail or 'not loadable with weights_only=True'}); "
            + CONVERTER_HINT.format(path=path)) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise RuntimeError(f"cannot read checkpoint {path}: {err}") from err


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Read a checkpoint dict on the CPU with the weights-only loader (see torch_load_safe)."""
    state = torch_load_safe(path)
    if not isinstance(state, dict):
        raise RuntimeError(f"checkpoint {os.fspath(path)}: expected a dict, got {type(state).__name__}")
    return state


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


def average_stamp_path(out_path: PathLike) -> str:
    """<avg_model.pt>.stamp.json: which checkpoints (by content) and num_avg made the averaged model."""
    return os.fspath(out_path) + ".stamp.json"


def _average_inputs(model_dir: PathLike, num_avg: int) -> Dict[str, Any]:
    """The stamp record of averaging the last num_avg checkpoints of model_dir as they are now."""
    found = list_checkpoints(model_dir)
    if not found:
        raise FileNotFoundError(f"no model_N.pt checkpoints in {os.fspath(model_dir)} to average")
    epochs = sorted(found)[-max(1, int(num_avg)):]
    return {"num_avg": int(num_avg), "epochs": epochs,
            "checkpoints": {str(e): file_fingerprint(found[e]) for e in epochs},
            "paths": {str(e): found[e] for e in epochs}}


def average_last(model_dir: PathLike, num_avg: int, out_path: PathLike, force: bool = True) -> List[int]:
    """Average the last `num_avg` epoch checkpoints of model_dir into out_path atomically; returns the epochs.

    A stamp beside out_path records the averaged checkpoints' content fingerprints and num_avg; with
    force=False an existing out_path whose stamp matches is kept (any other num_avg or checkpoint re-averages).
    """
    inputs = _average_inputs(model_dir, num_avg)
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
