"""Strict state_dict matching, shared by every model-file loader (ours and WeSpeaker's layout): names and shapes
are checked before anything is copied, and a mismatch names the file, the keys and both shapes.

No torch import at module level: the package's scorer side imports utils without torch.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

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


def load_state_dict_strict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str, what: str,
                           hint: str = "") -> None:
    """check_state_dict, then module.load_state_dict(state, strict=True): all or nothing is copied."""
    check_state_dict(module, state, source, what, hint)
    module.load_state_dict(state, strict=True)
