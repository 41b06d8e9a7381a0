"""models/config.yaml in WeSpeaker's key names, beside avg_model.pt, as WeSpeaker's pretrained-model dirs have it.

WeSpeaker builds a model from such a file with `get_speaker_model(config['model'])(**config['model_args'])`
and, when it extracts, computes fbank with `dataset_args.fbank_args` (dither forced to 0). Its ResNet
factories take exactly feat_dim, embed_dim, pooling_func and two_emb_layer (feat_dim and embed_dim have no
default there), and its fbank takes num_mel_bins, frame_length, frame_shift and dither. The file is written
from the parsed TrainConfig, every default filled in (config/serialize.py), through one declarative key map
(KEY_MAP: WeSpeaker's key, our key, how the value is written): model_args of a ResNet hold those four arguments
and `m_channels` only when it is not WeSpeaker's fixed 32 (ResNet's own default).

`dataset_args.num_frms` is WeSpeaker's one number, as its train.py saves it (its export_onnx.py builds its
example input from it): for our chunk-length range [min, max] the min, WeSpeaker's 200 for conf/paper's
[200, 400]. Otherwise the file is a complete training config of ours: load_config + the synonym handling of
config/train_config.py read it back to the same experiment (`enable_amp` is our `amp`, a scalar `num_frms` is
[n, n]); the exact chunk range is in the exp dir's own config.yaml. Our own keys (modality, train_data, kd, ...)
are kept: WeSpeaker ignores keys it does not read.

The other way, a config.yaml that WeSpeaker's train.py saved has keys its run filled in (WESPEAKER_RUNTIME_KEYS:
the head's size, a copy of embed_dim, iterations per epoch, ...); `without_runtime_keys` checks and sets them
aside, so such a file loads where a saved config is read for its model (config/model_config.py: bin.embed,
bin.export, a WeSpeaker model dir as model_init).
"""
from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import yaml

from wespeaker_avkd.config.serialize import config_to_dict
from wespeaker_avkd.config.train_config import TrainConfig, parse_train_config
from wespeaker_avkd.utils.fileio import PathLike, atomic_write
from wespeaker_avkd.utils.schema import Where, positive_int

logger = logging.getLogger(__name__)

FILE_NAME = "config.yaml"
# The depths wespeaker/models/resnet.py defines, and the arguments its factory functions take.
WESPEAKER_RESNETS = ("ResNet18", "ResNet34", "ResNet50", "ResNet101", "ResNet152", "ResNet221", "ResNet293")
WESPEAKER_RESNET_ARGS = ("feat_dim", "embed_dim", "pooling_func", "two_emb_layer")
# Keys WeSpeaker's train.py writes into the config.yaml it saves (run-time values, not settings of the model): what
# each is, for docs/wespeaker.md and the messages. `without_runtime_keys` checks and drops them.
WESPEAKER_RUNTIME_KEYS = {
    "projection_args.embed_dim": "a copy of model_args.embed_dim (must equal it)",
    "projection_args.num_class": "the AAM head's rows: training speakers (x3 with speed perturbation); the head "
                                 "comes from the checkpoint or spk2id",
    "projection_args.do_lm": "whether that run was large-margin fine-tuning (a training setting)",
    "margin_update.epoch_iter": "iterations per epoch of that run (our trainer counts its own loader)",
    "scheduler_args.num_epochs": "a copy of num_epochs",
    "scheduler_args.epoch_iter": "iterations per epoch of that run",
    "scheduler_args.scale_ratio": "that run's learning-rate scale (GPUs x batch size / 64)",
    "optimizer_args.lr": "that run's initial learning rate (the schedule sets it)",
}
HEADER = ("# WeSpeaker-layout config of the model beside it (avg_model.pt), written by wespeaker_avkd:\n"
          "# WeSpeaker's get_speaker_model(model)(**model_args) builds the network; dataset_args.fbank_args are\n"
          "# its features. Also read by wespeaker_avkd (bin.embed --wespeaker_checkpoint ... --config ...).\n")


def _defaults(fn: Callable[..., Any], names: Iterable[str]) -> dict[str, Any]:
    """{name: default} of fn's keyword parameters among `names` that have a default."""
    params = inspect.signature(fn).parameters
    return {n: params[n].default for n in names if n in params and params[n].default is not inspect.Parameter.empty}


_SKIP = object()  # a key_map value: the key is not written


def _model_args(args: Mapping[str, Any], ours: Mapping[str, Any]) -> Any:
    """model_args as WeSpeaker's factory for the model takes them: for its ResNets the four arguments, and any
    other argument only where it differs from our default (m_channels other than WeSpeaker's fixed 32); any
    other model's args as they are."""
    model = ours["model"]
    if model not in WESPEAKER_RESNETS:
        return dict(args)
    from wespeaker_avkd.models.resnet import ResNet

    defaults = _defaults(ResNet.__init__, args)
    out = {k: args[k] for k in WESPEAKER_RESNET_ARGS}
    extra = {k: v for k, v in args.items() if k not in out and (k not in defaults or v != defaults[k])}
    if "m_channels" in extra:
        logger.info("model_args.m_channels %s: WeSpeaker's %s() factory fixes m_channels 32 and refuses the key; "
                    "a WeSpeaker user builds wespeaker.models.resnet.ResNet(block, num_blocks, m_channels=%s, ...) "
                    "for this model", extra["m_channels"], model, extra["m_channels"])
    return {**out, **extra}


def _dataset_args(args: Mapping[str, Any], ours: Mapping[str, Any]) -> Any:
    """dataset_args with WeSpeaker's one chunk length (audio): the range's min (see the module docstring)."""
    out = dict(args)
    if isinstance(out.get("num_frms"), list):
        out["num_frms"] = out["num_frms"][0]
    return out


# WeSpeaker's key -> (our key, or None for a value WeSpeaker's train.py reads that our config has no key for;
# how the value is written, or None: as it is). In the order of WeSpeaker's examples/voxceleb/v2/conf/resnet.yaml;
# exp_dir and gpus, which belong to a WeSpeaker training run, are left out (our config refuses them). Every key of
# ours not named here (modality, train_data, kd, ...) follows under its own name: WeSpeaker ignores keys it does
# not read.
KEY_MAP: dict[str, tuple[str | None, Callable[[Any, Mapping[str, Any]], Any] | None]] = {
    "num_avg": ("num_avg", None),
    "enable_amp": ("amp", None),
    "seed": ("seed", None),
    "num_epochs": ("num_epochs", None),
    "save_epoch_interval": ("save_epoch_interval", None),
    "log_batch_interval": ("log_batch_interval", None),
    "dataloader_args": ("dataloader_args", None),
    "dataset_args": ("dataset_args", _dataset_args),
    "model": ("model", None),
    "model_init": ("model_init", None),
    "model_args": ("model_args", _model_args),
    "projection_args": ("projection_args", None),
    "margin_scheduler": (None, lambda _, ours: "MarginScheduler" if ours["margin_update"] else _SKIP),
    "margin_update": ("margin_update", lambda value, _: value if value else _SKIP),
    "loss": (None, lambda _, ours: "CrossEntropyLoss"),
    "loss_args": (None, lambda _, ours: {}),
    "optimizer": ("optimizer", None),
    "optimizer_args": ("optimizer_args", None),
    "scheduler": ("scheduler", None),
    "scheduler_args": ("scheduler_args", None),
}


def wespeaker_config(cfg: TrainConfig | Mapping[str, Any]) -> dict[str, Any]:
    """A parsed training config (or a saved config.yaml's mapping, parsed here) -> a new dict in WeSpeaker's
    key names and layout (KEY_MAP), every default written; our own keys kept after WeSpeaker's."""
    if not isinstance(cfg, TrainConfig):
        cfg = parse_train_config(cfg)
    ours = config_to_dict(cfg)
    out: dict[str, Any] = {}
    for their_key, (our_key, write) in KEY_MAP.items():
        value = ours.get(our_key) if our_key is not None else None
        value = write(value, ours) if write is not None else value
        if value is not _SKIP:
            out[their_key] = value
    used = {our_key for our_key, _ in KEY_MAP.values()}
    out.update({k: v for k, v in ours.items() if k not in used})
    return out


def write_wespeaker_config(cfg: TrainConfig | Mapping[str, Any], models_dir: PathLike) -> str:
    """Write wespeaker_config(cfg) to models_dir/config.yaml atomically (left untouched when the content is
    already the same, so a finished run re-run changes no file); returns the path."""
    path = os.path.join(os.fspath(models_dir), FILE_NAME)
    text = HEADER + yaml.safe_dump(wespeaker_config(cfg), sort_keys=False, default_flow_style=False)
    try:
        with open(path, "r", encoding="utf-8") as f:
            if f.read() == text:
                return path
    except FileNotFoundError:
        pass
    with atomic_write(path) as f:
        f.write(text)
    return path


def without_runtime_keys(cfg: Mapping[str, Any], where: Where) -> dict[str, Any]:
    """A copy of a saved config without WeSpeaker's WESPEAKER_RUNTIME_KEYS (other keys untouched); a
    projection_args.embed_dim other than model_args.embed_dim, or a num_class / epoch_iter that is not a positive
    integer, is refused naming the file and key."""
    out = dict(cfg)
    for dotted in WESPEAKER_RUNTIME_KEYS:
        section, key = dotted.split(".")
        if not isinstance(out.get(section), Mapping) or key not in out[section]:
            continue
        value = out[section][key]
        here = where.key(dotted)
        if dotted == "projection_args.embed_dim":
            model_dim = (out.get("model_args") or {}).get("embed_dim") if isinstance(out.get("model_args"),
                                                                                     Mapping) else None
            if model_dim is not None and value != model_dim:
                raise here.error(f"is {value!r} but model_args.embed_dim is {model_dim!r}; WeSpeaker's train.py "
                                 f"writes the same number to both")
        elif dotted in ("projection_args.num_class", "margin_update.epoch_iter"):
            positive_int(value, here)
        out[section] = {k: v for k, v in out[section].items() if k != key}
    return out
