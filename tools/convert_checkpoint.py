#!/usr/bin/env python3
"""Convert model files of this toolkit's old nested layout ({'model', 'projection', training state}) to
WeSpeaker's flat layout, once per old exp dir. No current run writes the old layout, so this lives outside the
package and uses its public API (wespeaker_avkd.checkpoint).

    python tools/convert_checkpoint.py --src exp/old/models/model_10.pt --dst model_10.pt
    python tools/convert_checkpoint.py --models_dir exp/old/models

The flat file holds the encoder's state_dict plus `projection.*` (WeSpeaker's load_checkpoint matches every
tensor); an epoch file's training state goes to train_state/train_state_<epoch>.pt beside its models/ dir
(--models_dir also moves training states an earlier version left in models/ there, and writes models/config.yaml
in WeSpeaker's names when the exp's config.yaml is there).

Files are read with the weights-only loader (numpy arrays, the old layout's RNG state, are the one addition):
nothing stored in a file can run code.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from wespeaker_avkd import checkpoint as ckpt
from wespeaker_avkd.utils.errors import ArgumentParser, UsageError, run_main
from wespeaker_avkd.utils.fileio import PathLike
from wespeaker_avkd.utils.state_dict import check_tensor_sizes, strip_ddp_prefix

TRAIN_STATE_KEYS = ("kd_adapter", "optimizer", "scheduler", "scaler", "margin", "epoch", "global_step", "rng")


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


def _load_old(src: str) -> Mapping[str, Any]:
    """An old-layout file, weights-only with numpy arrays allowed (refused, named, if it holds anything else)."""
    try:
        obj = ckpt.torch_load_safe(src)
    except ckpt.UnsafeCheckpointError:
        try:
            with torch.serialization.safe_globals(_numpy_array_globals()):
                obj = torch.load(src, map_location="cpu", weights_only=True)
            check_tensor_sizes(obj, src)
        except pickle.UnpicklingError as err:
            raise ckpt.UnsafeCheckpointError(f"{src}: holds objects beyond tensors, containers and numpy arrays; "
                                             f"refused (no loader here runs code from a file): {err}") from None
    if not isinstance(obj, Mapping):
        raise ckpt.CheckpointLayoutError(f"{src}: expected a dict, got {type(obj).__name__}")
    return obj


def convert_checkpoint(src: PathLike, dst: PathLike, state_dst: PathLike | None = None) -> dict[str, Any]:
    """Rewrite a model file of the old nested layout as a flat WeSpeaker-layout model file `dst` (+ its training
    state in `state_dst`, default train_state_path(dirname(dst), epoch): the train_state/ dir beside dst's dir,
    when the source holds one). Returns {"keys": tensor count, "train_state": its path or None}."""
    src = os.fspath(src)
    obj = _load_old(src)
    nested = isinstance(obj.get("model"), Mapping)
    flat = ckpt.flat_model_state(obj["model"], obj.get("projection") or {}) if nested else dict(obj.get("state_dict",
                                                                                                         obj))
    flat = strip_ddp_prefix(flat)
    bad = [k for k, v in flat.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ckpt.CheckpointLayoutError(f"{src}: key {bad[0]!r} is not a tensor; not a model file")
    train_state = {k: obj[k] for k in TRAIN_STATE_KEYS if k in obj and nested}
    if "rng" in train_state:
        train_state["rng"] = _safe_rng(train_state["rng"])
    ckpt.save_checkpoint(dst, flat)
    state_out = None
    if "optimizer" in train_state and "epoch" in train_state:
        state_out = os.fspath(state_dst) if state_dst else ckpt.train_state_path(
            os.path.dirname(os.fspath(dst)) or ".", int(train_state["epoch"]))
        ckpt.save_checkpoint(state_out, train_state)
    return {"keys": len(flat), "train_state": state_out}


def convert_models_dir(model_dir: PathLike) -> list[str]:
    """Convert every model_<N>.pt and avg_model.pt of a models/ dir in place (files already flat are left as they
    are), moving training states left in models/ to train_state/; with the exp's config.yaml beside models/,
    write models/config.yaml in WeSpeaker's names next to avg_model.pt (as training does). Returns the
    converted paths."""
    ckpt.migrate_train_states(model_dir)
    done = []
    paths = list(ckpt.list_checkpoints(model_dir).values())
    avg = os.path.join(os.fspath(model_dir), "avg_model.pt")
    if os.path.isfile(avg):
        paths.append(avg)
    for path in paths:
        try:
            ckpt.load_model_state(path)
            continue  # already flat
        except (ckpt.CheckpointLayoutError, ckpt.UnsafeCheckpointError):
            pass
        convert_checkpoint(path, path)
        done.append(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(ckpt.average_stamp_path(avg))  # the stamp fingerprints the old bytes
    exp_config = os.path.join(os.path.dirname(os.path.abspath(os.fspath(model_dir))), "config.yaml")
    if os.path.isfile(avg) and os.path.isfile(exp_config):
        from wespeaker_avkd.config.train_config import load_yaml
        from wespeaker_avkd.config.wespeaker import write_wespeaker_config

        write_wespeaker_config(load_yaml(exp_config), model_dir)
    return done


def run(argv: list[str]) -> int:
    """Parse and convert."""
    parser = ArgumentParser(prog="convert_checkpoint", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", help="one old-layout model file")
    parser.add_argument("--dst", help="with --src: the flat model file to write (may equal --src)")
    parser.add_argument("--state_dst", help="with --src: where its training state goes "
                                            "(default train_state/train_state_<epoch>.pt in the dir above --dst's)")
    parser.add_argument("--models_dir", help="convert every model_N.pt and avg_model.pt of this dir in place")
    args = parser.parse_args(argv)
    if bool(args.models_dir) == bool(args.src):
        raise UsageError("give either --src/--dst or --models_dir")
    if args.models_dir:
        if not os.path.isdir(args.models_dir):
            raise UsageError(f"--models_dir {args.models_dir}: no such directory")
        done = convert_models_dir(args.models_dir)
        print(f"converted {len(done)} files in {args.models_dir}")
        return 0
    if not args.dst:
        raise UsageError("--src needs --dst")
    out = convert_checkpoint(args.src, args.dst, args.state_dst)
    print(f"wrote {args.dst} ({out['keys']} tensors)" + (f" and {out['train_state']}" if out["train_state"] else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    """run(argv); an input error is one stderr line and exit status 2 (utils.errors.run_main)."""
    return run_main("convert_checkpoint", run, argv)


if __name__ == "__main__":
    sys.exit(main())
