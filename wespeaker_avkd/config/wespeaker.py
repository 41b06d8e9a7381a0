"""models/config.yaml in WeSpeaker's key names, beside avg_model.pt, as WeSpeaker's pretrained-model dirs have it.

WeSpeaker builds a model from such a file with `get_speaker_model(config['model'])(**config['model_args'])`
and, when it extracts, computes fbank with `dataset_args.fbank_args` (dither forced to 0). Its ResNet
factories take exactly feat_dim, embed_dim, pooling_func and two_emb_layer (feat_dim and embed_dim have no
default there), and its fbank takes num_mel_bins, frame_length, frame_shift and dither; so those keys are
always written, with our defaults filled in, and `m_channels` only when it is not WeSpeaker's fixed 32.

`dataset_args.num_frms` is WeSpeaker's one number, as its train.py saves it (its export_onnx.py builds its
example input from it): for our chunk-length range [min, max] the min, WeSpeaker's 200 for conf/paper's
[200, 400]. Otherwise the file is a complete training config of ours: load_config + the synonym handling of
config/train_config.py read it back to the same experiment (`enable_amp` is our `amp`, a scalar `num_frms` is [n, n]);
the exact chunk range is in the exp dir's own config.yaml. Our own keys (modality, train_data, kd, ...) are kept,
WeSpeaker ignores keys it does not read.

The other way, a config.yaml that WeSpeaker's train.py saved has keys its run filled in (WESPEAKER_RUNTIME_KEYS:
the head's size, a copy of embed_dim, iterations per epoch, ...); `without_runtime_keys` checks and sets them
aside, so such a file loads where a saved config is read for its model (config/model_config.py: bin.embed,
bin.export, a WeSpeaker model dir as model_init).
"""
from __future__ import annotations

import copy
import inspect
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from wespeaker_avkd.kinds import kind_of
from wespeaker_avkd.utils.fileio import PathLike, atomic_write
from wespeaker_avkd.utils.schema import Where, positive_int

logger = logging.getLogger(__name__)

FILE_NAME = "config.yaml"
# The depths wespeaker/models/resnet.py defines, and the arguments its factory functions take.
WESPEAKER_RESNETS = ("ResNet18", "ResNet34", "ResNet50", "ResNet101", "ResNet152", "ResNet221", "ResNet293")
WESPEAKER_RESNET_ARGS = ("feat_dim", "embed_dim", "pooling_func", "two_emb_layer")
WESPEAKER_M_CHANNELS = 32  # fixed inside WeSpeaker's factories (ResNet's own default)
# wespeaker/dataset/processor.py:compute_fbank's keyword arguments; projection_args of its resnet.yaml.
WESPEAKER_FBANK_ARGS = ("num_mel_bins", "frame_length", "frame_shift", "dither")
WESPEAKER_PROJECTION_ARGS = ("scale", "easy_margin")
WESPEAKER_MARGIN_ARGS = ("increase_type", "update_margin")
# Top-level keys in the order of WeSpeaker's examples/voxceleb/v2/conf/resnet.yaml (exp_dir and gpus, which
# belong to a WeSpeaker training run, are left out: our config refuses them).
WESPEAKER_ORDER = ("num_avg", "enable_amp", "seed", "num_epochs", "save_epoch_interval", "log_batch_interval",
                   "dataloader_args", "dataset_args", "model", "model_init", "model_args", "projection_args",
                   "margin_scheduler", "margin_update", "loss", "loss_args", "optimizer", "optimizer_args",
                   "scheduler", "scheduler_args")
# Our own keys, written after WeSpeaker's when the config has them.
OUR_ORDER = ("modality", "train_data", "keep_checkpoints", "tensorboard", "plugins", "eval_dataloader_args",
             "embedding_dirs", "kd")
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


def _defaults(fn: Callable[..., Any], names: tuple[str, ...]) -> dict[str, Any]:
    """{name: default} of fn's keyword parameters among `names` that have a default."""
    params = inspect.signature(fn).parameters
    return {n: params[n].default for n in names if n in params and params[n].default is not inspect.Parameter.empty}


def _model_args(model: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """model_args as WeSpeaker's factory for `model` takes them: its four arguments always written (our defaults
    filled in), m_channels dropped when it is WeSpeaker's 32; any other model's args as given."""
    if model not in WESPEAKER_RESNETS:
        return copy.deepcopy(dict(args))
    from wespeaker_avkd.models.resnet import ResNet

    out = {**_defaults(ResNet.__init__, WESPEAKER_RESNET_ARGS), **copy.deepcopy(dict(args))}
    ordered = {k: out.pop(k) for k in WESPEAKER_RESNET_ARGS}
    m_channels = out.pop("m_channels", WESPEAKER_M_CHANNELS)
    if m_channels != WESPEAKER_M_CHANNELS:
        out["m_channels"] = m_channels
        logger.info("model_args.m_channels %s: WeSpeaker's %s() factory fixes m_channels 32 and refuses the key; "
                    "a WeSpeaker user builds wespeaker.models.resnet.ResNet(block, num_blocks, m_channels=%s, ...) "
                    "for this model", m_channels, model, m_channels)
    return {**ordered, **out}


def _dataset_args(modality: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """dataset_args with WeSpeaker's scalar num_frms (a range's min) and every fbank setting written (audio);
    other modalities as given."""
    out = copy.deepcopy(dict(args))
    if not kind_of(modality).takes_fbank:
        return out
    frms = out.get("num_frms")
    if isinstance(frms, (list, tuple)) and frms:
        out["num_frms"] = frms[0]  # WeSpeaker's one chunk length: the range's min (see the module docstring)
    from wespeaker_avkd.data.datasets import DEFAULT_FBANK_ARGS  # the values the datasets use when unset

    defaults = {k: DEFAULT_FBANK_ARGS[k] for k in WESPEAKER_FBANK_ARGS}
    out["fbank_args"] = {**defaults, **dict(out.get("fbank_args") or {})}
    return out


def _projection_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """projection_args with project_type and WeSpeaker's scale / easy_margin written (our head's defaults)."""
    from wespeaker_avkd.registry import PROJECTIONS

    out = copy.deepcopy(dict(args))
    project_type = out.pop("project_type", "arc_margin")
    filled = _defaults(PROJECTIONS.get(project_type).__init__, WESPEAKER_PROJECTION_ARGS)
    return {"project_type": project_type, **filled, **out}


def wespeaker_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Our training config (merged, KD preset resolved; our names or WeSpeaker's synonyms) -> a new dict in
    WeSpeaker's key names and layout: enable_amp for amp, scalar num_frms, explicit model_args,
    fbank_args, projection_args and margin settings, margin_scheduler / loss keys; our own keys kept after."""
    from wespeaker_avkd.config.train_config import TrainConfig
    from wespeaker_avkd.models.margin_scheduler import MarginScheduler

    cfg = copy.deepcopy(dict(cfg))
    modality = cfg.get("modality", "audio")
    amp = cfg.pop("amp", None)
    enable_amp = cfg.pop("enable_amp", None)
    defaults = dict(TrainConfig.DEFAULTS)
    out: dict[str, Any] = {}
    for key in WESPEAKER_ORDER:
        if key == "enable_amp":
            out[key] = bool(amp if amp is not None else enable_amp if enable_amp is not None else defaults["amp"])
        elif key in ("num_avg", "seed", "save_epoch_interval", "log_batch_interval", "optimizer", "scheduler"):
            out[key] = cfg.pop(key, defaults[key])
        elif key == "dataset_args":
            out[key] = _dataset_args(modality, cfg.pop(key, None) or {})
        elif key == "model_init":
            out[key] = cfg.pop(key, None)
        elif key == "model_args":
            out[key] = _model_args(str(out.get("model")), cfg.pop(key, None) or {})
        elif key == "projection_args":
            out[key] = _projection_args(cfg.pop(key, None) or {})
        elif key == "margin_scheduler":
            if cfg.get("margin_update"):
                out[key] = cfg.pop(key, "MarginScheduler")
        elif key == "margin_update":
            if cfg.get(key):
                given = dict(cfg.pop(key))
                filled = _defaults(MarginScheduler.__init__, WESPEAKER_MARGIN_ARGS)
                out[key] = {**given, **{k: v for k, v in filled.items() if k not in given}}
        elif key == "loss":
            out[key] = cfg.pop(key, "CrossEntropyLoss")
        elif key == "loss_args":
            out[key] = cfg.pop(key, None) or {}
        elif key in cfg:
            out[key] = cfg.pop(key)
    out["modality"] = cfg.pop("modality", modality)
    for key in OUR_ORDER:
        if key in cfg:
            out[key] = cfg.pop(key)
    out.update(cfg)  # anything else (e.g. a plugin's key) as it is: nothing is dropped
    return out


def write_wespeaker_config(cfg: Mapping[str, Any], models_dir: PathLike) -> str:
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
