"""The one loader of model files, with named policies; every caller that reads a model file goes through it.

A model file is one name -> tensor mapping, read weights-only (files.torch_load_safe: no code runs, no forged
tensor is allocated). Ours is WeSpeaker's flat layout (encoder keys + the AAM head as `projection.*`); the
reader also takes the containers other tools write: the mapping under a "state_dict" or "model" key, and
DistributedDataParallel's `module.` prefix on every key. Only this toolkit's old nested layout ({model,
projection, [training state]}) is refused, naming the converter (tools/convert_checkpoint.py).

A policy (POLICIES) says what module the file goes into and what happens to the head's tensors:
- strict:       an EmbeddingNet; every encoder and projection tensor must match by name and shape;
- trunk:        an EmbeddingNet; the encoder strictly, `projection.*` set aside (logged) and returned, the
                head keeps its own initialisation (model_init from a model trained on other speakers);
- encoder_only: an encoder module; the file holds just an encoder (a `projection.*` key is refused);
- wespeaker:    an encoder module; a WeSpeaker checkpoint, `projection.*` set aside and returned.
Names and shapes are checked for every part before anything is copied (utils/state_dict.check_state_dict), so a
refused file leaves the module as it was; every refusal is one line naming the file.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

import torch

from wespeaker_avkd.checkpoint.files import CONVERTER_HINT, CheckpointLayoutError, torch_load_safe
from wespeaker_avkd.utils.fileio import PathLike
from wespeaker_avkd.utils.state_dict import check_state_dict, strip_ddp_prefix

logger = logging.getLogger(__name__)

PROJECTION_PREFIX = "projection."
# Keys other tools put a model's state_dict under (WeSpeaker-derived and generic trainer checkpoints).
WRAPPER_KEYS = ("state_dict", "model")


@dataclasses.dataclass(frozen=True)
class LoadPolicy:
    """How a model file maps onto a module: `into` 'net' (an EmbeddingNet: .encoder, .projection) or 'encoder'
    (the module itself); `head` what happens to `projection.*`: 'load' (strictly, into net.projection),
    'set_aside' (returned, not loaded) or 'refuse' (the file must hold none); `hint` for a shape mismatch."""

    name: str
    into: str
    head: str
    hint: str


_NET_HINT = "other embed_dim, feat_dim or speaker count? policy 'trunk' sets the AAM head aside"
_ENCODER_HINT = "check feat_dim, embed_dim, m_channels, two_emb_layer"
POLICIES = {p.name: p for p in (LoadPolicy("strict", "net", "load", _NET_HINT),
                                LoadPolicy("trunk", "net", "set_aside", _NET_HINT),
                                LoadPolicy("encoder_only", "encoder", "refuse", _ENCODER_HINT),
                                LoadPolicy("wespeaker", "encoder", "set_aside", _ENCODER_HINT))}
LOAD_POLICIES = tuple(POLICIES)


def flat_model_state(encoder_state: Mapping[str, torch.Tensor],
                     projection_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """WeSpeaker's flat layout: encoder keys + `projection.<key>` for the AAM head."""
    out = dict(encoder_state)
    out.update({PROJECTION_PREFIX + k: v for k, v in projection_state.items()})
    return out


def model_tensors(obj: Any, path: str) -> dict[str, torch.Tensor]:
    """The flat {name: tensor} of a loaded model file `obj` (see the module docstring for the containers read);
    CheckpointLayoutError naming `path` for the old nested layout or anything that is not name -> tensor."""
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping) and "projection" in obj:
        raise CheckpointLayoutError(
            f"{path}: a model file in the old nested layout ({{'model': ..., 'projection': ...}}); "
            + CONVERTER_HINT.format(path=path) + " (or --models_dir DIR for a whole models/ dir)")
    if isinstance(obj, Mapping):
        obj = next((obj[key] for key in WRAPPER_KEYS if isinstance(obj.get(key), Mapping)), obj)
    if not isinstance(obj, Mapping):
        raise CheckpointLayoutError(f"{path}: expected a state_dict (name -> tensor), optionally under "
                                    f"{' or '.join(map(repr, WRAPPER_KEYS))}, got {type(obj).__name__}")
    bad = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise CheckpointLayoutError(f"{path}: expected a state_dict (name -> tensor); key {bad!r} is not a tensor")
    return strip_ddp_prefix(obj)


def load_model_state(path: PathLike) -> dict[str, torch.Tensor]:
    """A model file as a flat {name: tensor} dict, read weights-only (model_tensors: containers unwrapped, a
    `module.` prefix on every key dropped, the old nested layout refused naming the converter)."""
    return model_tensors(torch_load_safe(path), os.fspath(path))


def _policy(name: str) -> LoadPolicy:
    """POLICIES[name], or a ValueError listing the policies."""
    if name not in POLICIES:
        raise ValueError(f"checkpoint load policy must be one of {LOAD_POLICIES}, got {name!r}")
    return POLICIES[name]


def put_model_state(module: torch.nn.Module, state: Mapping[str, torch.Tensor], path: PathLike,
                    policy: str = "strict") -> dict[str, torch.Tensor]:
    """Load the flat `state` read from `path` (load_model_state) into `module` under `policy` (POLICIES); returns
    the `projection.*` tensors set aside (empty unless the policy sets the head aside)."""
    rule, path = _policy(policy), os.fspath(path)
    head = {k: v for k, v in state.items() if k.startswith(PROJECTION_PREFIX)}
    trunk = {k: v for k, v in state.items() if k not in head}
    if rule.head == "refuse" and head:
        raise CheckpointLayoutError(f"{path}: holds an AAM head ({next(iter(head))} ...), not an encoder alone; "
                                    f"policy 'wespeaker' sets the head aside")
    parts = [(module.encoder if rule.into == "net" else module, trunk, "encoder")]
    if rule.head == "load":
        parts.append((module.projection, {k[len(PROJECTION_PREFIX):]: v for k, v in head.items()}, "projection"))
    for target, tensors, what in parts:  # every part checked before any is copied
        check_state_dict(target, tensors, path, what, rule.hint)
    for target, tensors, _ in parts:
        target.load_state_dict(tensors, strict=True)
    if rule.head != "set_aside":
        return {}
    if head:
        logger.info("%s: policy %r: encoder loaded, AAM head set aside (%s)", path, rule.name,
                    ", ".join(f"{k} {tuple(v.shape)}" for k, v in head.items()))
    return head


def load_into_net(module: torch.nn.Module, path: PathLike, policy: str = "strict") -> dict[str, torch.Tensor]:
    """The one model-file loader: read `path` weights-only and load it into `module` under `policy` ('strict',
    'trunk': an EmbeddingNet; 'encoder_only', 'wespeaker': an encoder); returns the tensors set aside."""
    _policy(policy)
    return put_model_state(module, load_model_state(path), path, policy)
