"""Strict state_dict matching for the one model-file loader (checkpoint/model_file.py, every policy): names and
shapes are checked before anything is copied, and a mismatch names the file, the keys and both shapes.

No torch import at module level: the package's scorer side imports utils without torch.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from wespeaker_avkd.utils.errors import NamedError

if TYPE_CHECKING:
    import torch

from wespeaker_avkd.utils.errors import InputKeyError, InputValueError

# How many missing / unexpected names a message lists (a whole ResNet's keys would bury the point).
LIST_LIMIT = 8
DDP_PREFIX = "module."


def strip_ddp_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `state` without DistributedDataParallel's `module.` prefix, when every key carries it."""
    if state and all(k.startswith(DDP_PREFIX) for k in state):
        return {k[len(DDP_PREFIX):]: v for k, v in state.items()}
    return dict(state)


def _names(keys: list[str]) -> str:
    """'[a, b, ...]': the first LIST_LIMIT names, with ' ...' when there are more."""
    return f"{keys[:LIST_LIMIT]}{' ...' if len(keys) > LIST_LIMIT else ''}"


def check_state_dict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str, what: str,
                     hint: str = "") -> None:
    """Raise unless `state` has exactly module's state_dict names (KeyError listing the missing and unexpected
    ones) and shapes (ValueError naming the key and both shapes); `source` is the file, `what` the part
    ('encoder', 'projection', 'checkpoint'), `hint` what a shape mismatch usually means."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise InputKeyError(f"{source}: {what} keys do not match {type(module).__name__}: missing {_names(missing)}, "
                            f"unexpected {_names(unexpected)}")
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise InputValueError(f"{source}: {what} key {key!r} has shape {tuple(value.shape)} in the file but "
                                  f"{tuple(own[key].shape)} in {type(module).__name__}"
                                  + (f" ({hint})" if hint else ""))


class CheckpointSizeError(NamedError, ValueError):
    """A checkpoint tensor that claims more memory than its file holds (an expanded or forged tensor)."""


def _tensors(obj: Any, where: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """(key path, tensor) of every tensor in nested dicts, lists and tuples."""
    import torch

    if isinstance(obj, torch.Tensor):
        yield where or "<top>", obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from _tensors(value, f"{where}.{key}" if where else str(key))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _tensors(value, f"{where}[{i}]")


def check_tensor_sizes(obj: Any, path: str | os.PathLike[str]) -> None:
    """Refuse (CheckpointSizeError naming the file and key) a checkpoint loaded from `path` any of whose tensors
    or storages claims more bytes than the file holds. torch.save stores every storage uncompressed in the
    file, so a genuine tensor never does; an expanded view (stride 0) of a few bytes claiming terabytes loads
    without allocating, and would be allocated in full by its first dense copy (averaging, load_state_dict):
    this check runs between the two."""
    import torch

    path = os.fspath(path)
    limit = os.path.getsize(path)
    for key, tensor in _tensors(obj):
        if tensor.layout != torch.strided:
            raise CheckpointSizeError(f"checkpoint {path}: tensor {key!r} has layout {tensor.layout}; a model "
                                      "file holds dense tensors only")
        claimed = max(tensor.numel() * tensor.element_size(), tensor.untyped_storage().nbytes())
        if claimed > limit:
            raise CheckpointSizeError(
                f"checkpoint {path}: tensor {key!r} (shape {tuple(tensor.shape)}, stride {tuple(tensor.stride())}) "
                f"claims {claimed:,} bytes but the file holds {limit:,}; refusing a forged or expanded tensor "
                "before allocating it")
