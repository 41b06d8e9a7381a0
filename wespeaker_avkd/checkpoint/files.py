"""The checkpoint file format: weights-only reading and atomic writing of checkpoint dicts, and the RNG record.

Every file is read with torch.load(weights_only=True): a checkpoint holds tensors and plain containers only
(the numpy RNG state is stored as a tuple of plain values and an int64 tensor), so loading one can never run
code. A file that needs the full unpickler is refused with a message naming it and the converter of the
old layout (tools/convert_checkpoint.py); a tensor claiming more memory than its file holds is refused before
anything allocates it (utils/state_dict.check_tensor_sizes).
"""
from __future__ import annotations

import os
import pickle
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from wespeaker_avkd.utils.errors import NamedError
from wespeaker_avkd.utils.fileio import PathLike, atomic_torch_save
from wespeaker_avkd.utils.state_dict import check_tensor_sizes

CONVERTER_HINT = ("if it is a checkpoint written by an older version of this toolkit, convert it once with "
                  "the repository's tool: python tools/convert_checkpoint.py --src {path} --dst NEW_FILE")


class UnsafeCheckpointError(NamedError, RuntimeError):
    """A checkpoint file holds objects that only the full (code-running) unpickler could rebuild."""


class UnreadableCheckpointError(NamedError, RuntimeError):
    """A checkpoint file that torch cannot read (truncated, not a checkpoint) or that holds no dict."""


class CheckpointLayoutError(NamedError, RuntimeError):
    """A file in a layout this loader does not read (e.g. the old nested {model, projection} dict)."""


def capture_rng_state() -> dict[str, Any]:
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


def save_checkpoint(path: PathLike, state: Mapping[str, Any]) -> None:
    """Write a checkpoint dict atomically (a crash leaves the previous epoch's files intact)."""
    atomic_torch_save(dict(state), path)


def torch_load_safe(path: PathLike) -> Any:
    """torch.load(path, weights_only=True) on the CPU; refuses (UnsafeCheckpointError naming the file) anything
    beyond tensors and plain containers, and tensors claiming more memory than the file holds
    (check_tensor_sizes), and turns unreadable files into a RuntimeError naming the file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()
        detail = next((line.strip() for line in first if "GLOBAL" in line or "Unsupported" in line), "")
        raise UnsafeCheckpointError(
            f"refusing to load checkpoint {path}: it holds objects other than tensors and plain containers, and "
            f"loading it would run code from the file ({detail or 'not loadable with weights_only=True'}); "
            + CONVERTER_HINT.format(path=path)) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise UnreadableCheckpointError(f"cannot read checkpoint {path}: {err}") from err
    check_tensor_sizes(obj, path)
    return obj


def load_checkpoint(path: PathLike) -> dict[str, Any]:
    """Read a checkpoint dict on the CPU with the weights-only loader (see torch_load_safe)."""
    state = torch_load_safe(path)
    if not isinstance(state, dict):
        raise UnreadableCheckpointError(f"checkpoint {os.fspath(path)}: expected a dict, got {type(state).__name__}")
    return state
