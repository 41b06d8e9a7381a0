"""Epoch checkpoints, training state, RNG state capture, resume lookup, pruning, averaging, the one loader.

Layout (WeSpeaker's): models/model_<N>.pt and models/avg_model.pt are ONE flat state_dict: the encoder's
keys plus the AAM head's as `projection.*`, exactly what WeSpeaker's load_checkpoint matches tensor for tensor.
The training state of epoch N (kd_adapter: the KD objective's trainable state; optimizer, scheduler, scaler,
margin, epoch, global_step, rng {python, numpy, torch, cuda}) is train_state/train_state_<N>.pt, beside models/
(train_state_dir): models/ holds only WeSpeaker's files, so WeSpeaker's average_model.py (whose glob takes every
*.pt there and parses an epoch number out of `model_<N>.pt`) runs on it. Exp dirs of earlier versions kept the
state in models/; it is read there too and moved out once (migrate_train_states). The teacher's embeddings and
AAM weight are never part of a student's files. Resume uses the newest N with both files.

Storage: `save_epoch_interval` I saves epochs N % I == 0 plus the last num_avg epochs (averaging needs them);
after each save only the newest training state and the newest `keep_checkpoints` model files (default:
num_avg) are kept, so a 150-epoch run ends with num_avg model files, avg_model.pt and one training state.

One loader for every model file (load_model_state / load_into_net): weights only, `module.` prefixes
unwrapped, strict by default; the only partial load is the explicit, logged "trunk" policy (projection.*
set aside, e.g. for model_init from a model trained on other speakers).

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
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from wespeaker_avkd.utils.errors import InputValueError, NamedError
from wespeaker_avkd.utils.fileio import PathLike, atomic_torch_save
from wespeaker_avkd.utils.fingerprint import file_fingerprint, stamp_matches, write_stamp
from wespeaker_avkd.utils.state_dict import check_tensor_sizes, load_state_dict_strict, strip_ddp_prefix

logger = logging.getLogger(__name__)

_MODEL_RE = re.compile(r"^model_(\d+)\.pt$")
_STATE_RE = re.compile(r"^train_state_(\d+)\.pt$")
PROJECTION_PREFIX = "projection."
LOAD_POLICIES = ("strict", "trunk")


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


def checkpoint_path(model_dir: PathLike, epoch: int) -> str:
    """models/model_<epoch>.pt."""
    return os.path.join(os.fspath(model_dir), f"model_{epoch}.pt")


STATE_DIR_NAME = "train_state"


def train_state_dir(model_dir: PathLike) -> str:
    """The training-state dir of an exp's models/ dir: its sibling <exp>/train_state."""
    return os.path.join(os.path.dirname(os.path.abspath(os.fspath(model_dir))), STATE_DIR_NAME)


def train_state_path(model_dir: PathLike, epoch: int) -> str:
    """<exp>/train_state/train_state_<epoch>.pt for model_dir <exp>/models."""
    return os.path.join(train_state_dir(model_dir), f"train_state_{epoch}.pt")


def _list(model_dir: PathLike, pattern: re.Pattern[str], glob_pattern: str) -> dict[int, str]:
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


def prune_checkpoints(model_dir: PathLike, keep_models: int) -> list[str]:
    """Delete all but the newest training state of a complete epoch and all but the newest keep_models model
    files (never the model of that newest state). Returns the removed paths."""
    newest = resume_point(model_dir)
    if newest is None:
        return []
    models = list_checkpoints(model_dir)
    keep = set(sorted(models)[-max(1, int(keep_models)):]) | {newest}
    removed = [path for epoch, path in list_train_states(model_dir).items() if epoch < newest]
    removed += [path for epoch, path in models.items() if epoch not in keep]
    for path in removed:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return removed


def save_checkpoint(path: PathLike, state: Mapping[str, Any]) -> None:
    """Write a checkpoint dict atomically (a crash leaves the previous epoch's files intact)."""
    atomic_torch_save(dict(state), path)


class UnsafeCheckpointError(NamedError, RuntimeError):
    """A checkpoint file holds objects that only the full (code-running) unpickler could rebuild."""


class UnreadableCheckpointError(NamedError, RuntimeError):
    """A checkpoint file that torch cannot read (truncated, not a checkpoint) or that holds no dict."""


CONVERTER_HINT = ("if it is a checkpoint written by an older version of this toolkit, convert it once with: "
                  "python -m wespeaker_avkd.bin.convert_checkpoint --src {path} --dst NEW_FILE")


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


class CheckpointLayoutError(NamedError, RuntimeError):
    """A model file in a layout this loader does not read (e.g. the old nested {model, projection} dict)."""


def flat_model_state(encoder_state: Mapping[str, torch.Tensor],
                     projection_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """WeSpeaker's flat layout: encoder keys + `projection.<key>` for the AAM head."""
    out = dict(encoder_state)
    out.update({PROJECTION_PREFIX + k: v for k, v in projection_state.items()})
    return out


def load_model_state(path: PathLike) -> dict[str, torch.Tensor]:
    """A model file as a flat {name: tensor} dict (weights only; a `module.` prefix on every key is dropped).

    Refuses the old nested layout ({model, projection, ...}) with the converter command, and anything that is
    not a name -> tensor mapping, naming the file.
    """
    path = os.fspath(path)
    obj = torch_load_safe(path)
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        raise CheckpointLayoutError(
            f"{path}: a model file in the old nested layout ({{'model': ..., 'projection': ...}}); convert it to the "
            f"flat WeSpeaker layout with: python -m wespeaker_avkd.bin.convert_checkpoint --src {path} --dst NEW_FILE "
            f"(or --models_dir DIR for a whole models/ dir)")
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        bad = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor)), None) \
            if isinstance(obj, Mapping) else None
        raise CheckpointLayoutError(f"{path}: expected a state_dict (name -> tensor)"
                                    + (f"; key {bad!r} is not a tensor" if bad is not None else
                                       f", got {type(obj).__name__}"))
    return strip_ddp_prefix(obj)


def load_strict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], path: str, what: str) -> None:
    """module.load_state_dict(state) strictly, with missing/unexpected keys and shape mismatches named."""
    load_state_dict_strict(module, state, path, what, hint="other embed_dim, feat_dim or speaker count? policy "
                                                          "'trunk' sets the AAM head aside")


def load_into_net(net: torch.nn.Module, path: PathLike, policy: str = "strict") -> dict[str, torch.Tensor]:
    """Load a model file into an EmbeddingNet (net.encoder, net.projection); returns the tensors set aside.

    policy 'strict': every encoder and projection tensor must match by name and shape. 'trunk': the encoder
    strictly, `projection.*` set aside (logged), the head keeps its own initialisation.
    """
    if policy not in LOAD_POLICIES:
        raise ValueError(f"checkpoint load policy must be one of {LOAD_POLICIES}, got {policy!r}")
    path = os.fspath(path)
    state = load_model_state(path)
    head = {k[len(PROJECTION_PREFIX):]: v for k, v in state.items() if k.startswith(PROJECTION_PREFIX)}
    trunk = {k: v for k, v in state.items() if not k.startswith(PROJECTION_PREFIX)}
    load_strict(net.encoder, trunk, path, "encoder")
    if policy == "strict":
        load_strict(net.projection, head, path, "projection")
        return {}
    if head:
        logger.info("%s: policy 'trunk': encoder loaded, AAM head set aside (%s)", path,
                    ", ".join(f"projection.{k} {tuple(v.shape)}" for k, v in head.items()))
    return {PROJECTION_PREFIX + k: v for k, v in head.items()}


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


_TRAIN_STATE_KEYS = ("kd_adapter", "optimizer", "scheduler", "scaler", "margin", "epoch", "global_step", "rng")


def _safe_rng(rng: Mapping[str, Any]) -> dict[str, Any]:
    """An RNG record of the old layout (numpy state as an ndarray tuple) in the weights-only form."""
    out = dict(rng)
    numpy_state = out.get("numpy")
    if numpy_state is not None and not isinstance(numpy_state[1], torch.Tensor):
        name, keys, pos, has_gauss, cached = numpy_state
        out["numpy"] = (str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                        float(cached))
    if "python" in out:
        out["python"] = tuple(out["python"])
    return out


def _numpy_array_globals() -> list[Any]:
    """What the weights-only unpickler needs to rebuild plain numpy arrays (the old layout's numpy RNG state):
    the array constructor, ndarray, dtype and the dtype classes, under numpy 1's and numpy 2's module names.
    None of them runs code; an object array's items still go through the same restricted unpickler."""
    from numpy.core.multiarray import _reconstruct  # numpy 2 keeps this name as an alias of numpy._core

    dtype_classes = {type(np.dtype(t)) for t in (np.uint32, np.int64, np.float64, np.float32, np.int32, np.uint8)}
    allowed: list[Any] = [np.ndarray, np.dtype, *sorted(dtype_classes, key=str)]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed.append((_reconstruct, f"{module}._reconstruct"))
    return allowed


def convert_checkpoint(src: PathLike, dst: PathLike, state_dst: PathLike | None = None) -> dict[str, Any]:
    """Rewrite a model file of the old nested layout ({model, projection, [training state]}) as a flat
    WeSpeaker-layout model file `dst` (+ its training state in `state_dst`, default
    train_state_path(dirname(dst), epoch): the train_state/ dir beside dst's dir, when the source holds one).
    Still weights-only: numpy arrays (the old RNG state) are the one addition to what the loader accepts,
    anything else is refused. Returns {"keys", "train_state"}."""
    src = os.fspath(src)
    try:
        obj = torch_load_safe(src)
    except UnsafeCheckpointError:
        try:
            with torch.serialization.safe_globals(_numpy_array_globals()):
                obj = torch.load(src, map_location="cpu", weights_only=True)
            check_tensor_sizes(obj, src)
        except pickle.UnpicklingError as err:
            raise UnsafeCheckpointError(f"{src}: holds objects beyond tensors, containers and numpy arrays; "
                                        f"refused (no loader here runs code from a file): {err}") from None
    if not isinstance(obj, Mapping):
        raise CheckpointLayoutError(f"{src}: expected a dict, got {type(obj).__name__}")
    if isinstance(obj.get("model"), Mapping):
        flat = flat_model_state(obj["model"], obj.get("projection") or {})
    else:
        flat = dict(obj.get("state_dict", obj))
    flat = strip_ddp_prefix(flat)
    bad = [k for k, v in flat.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointLayoutError(f"{src}: key {bad[0]!r} is not a tensor; not a model file")
    train_state = {k: obj[k] for k in _TRAIN_STATE_KEYS if k in obj and isinstance(obj.get("model"), Mapping)}
    if "rng" in train_state:
        train_state["rng"] = _safe_rng(train_state["rng"])
    save_checkpoint(dst, flat)
    state_out = None
    if "optimizer" in train_state and "epoch" in train_state:
        state_out = os.fspath(state_dst) if state_dst else train_state_path(os.path.dirname(os.fspath(dst)) or ".",
                                                                             int(train_state["epoch"]))
        save_checkpoint(state_out, train_state)
    return {"keys": len(flat), "train_state": state_out}


def convert_models_dir(model_dir: PathLike) -> list[str]:
    """Convert every model_<N>.pt and avg_model.pt of a models/ dir in place (old nested -> flat layout +
    train_state/train_state_<N>.pt), moving training states left in models/ to train_state/; files already flat
    are left as they are. When the experiment's config.yaml is beside the models/ dir, models/config.yaml in
    WeSpeaker's names is written next to avg_model.pt too (as training writes it now). Returns the converted
    paths."""
    migrate_train_states(model_dir)
    done = []
    paths = list(list_checkpoints(model_dir).values())
    avg = os.path.join(os.fspath(model_dir), "avg_model.pt")
    if os.path.isfile(avg):
        paths.append(avg)
    for path in paths:
        try:
            load_model_state(path)
            continue  # already flat
        except (CheckpointLayoutError, UnsafeCheckpointError):
            pass
        convert_checkpoint(path, path)
        done.append(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(average_stamp_path(avg))  # the stamp fingerprints the old bytes
    exp_config = os.path.join(os.path.dirname(os.path.abspath(os.fspath(model_dir))), "config.yaml")
    if os.path.isfile(avg) and os.path.isfile(exp_config):
        from wespeaker_avkd.config.train_config import load_yaml
        from wespeaker_avkd.config.wespeaker import write_wespeaker_config

        write_wespeaker_config(load_yaml(exp_config), model_dir)
    return done
