"""The model-and-input part of a saved config, parsed once where extraction and inference start: ModelConfig.

Extraction (inference/extract.py), bin.embed and bin.export read an exp dir's config.yaml (or, for a WeSpeaker
checkpoint, its yaml config) with `load_model_config` into a ModelConfig and pass that object down; nothing
below them reads the config dict.

ModelConfig is the subset of TrainConfig that builds the network and its evaluation inputs: modality, model
(+ model_args), plugins, the AAM head (projection_args, margin_update), amp, the eval keys of dataset_args
(audio: data_type, feat_source, fbank_args; visual: data_type, image_size, num_eval_frames, mean, std) and the
eval loader's settings (eval_dataloader_args, else dataloader_args). Each key it reads goes through TrainConfig's
own parser and default, so a bad value is refused with the file and key named. Keys it does not read are ignored, at the
top level and inside dataset_args and the loader args: they configure training, which validated them when the
run was trained. So the saved configs of old runs, a WeSpeaker config (its augmentation keys) and the minimal
configs tests write (model and modality only) all load. The values WeSpeaker's train.py fills into the config it
saves (projection_args.num_class, embed_dim, do_lm, margin_update.epoch_iter, ...: WESPEAKER_RUNTIME_KEYS of
config/wespeaker.py) are checked and set aside, so a WeSpeaker model dir's config.yaml loads as it is.
`modality` is required, except where the caller gives a default (a WeSpeaker config has none: audio).

`stamped` keeps the values of the keys that change embeddings (STAMPED_KEYS) exactly as the file wrote them (an
absent key is None): the extraction stamp records those, so the stamps of existing exp dirs stay byte-identical
and a finished extraction is not redone (the typed values fill defaults and would change the stamp).

The plugin modules a saved config names are imported only when the user allows it (`--trust_plugins`, or
installed entry points; registry.import_saved_plugins): loading a model dir runs no code that came with it.
"""
from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Mapping
from typing import Any

from wespeaker_avkd.config.components import parse_model_and_head
from wespeaker_avkd.config.loading import key_sources, load_config
from wespeaker_avkd.config.sections import ComponentArgs, MarginUpdate
from wespeaker_avkd.config.wespeaker import without_runtime_keys
from wespeaker_avkd.data.dataset_args import DataLoaderArgs
from wespeaker_avkd.kinds import kind_of
from wespeaker_avkd.registry import import_saved_plugins
from wespeaker_avkd.utils.fileio import PathLike
from wespeaker_avkd.utils.naming import MODALITIES
from wespeaker_avkd.utils.schema import Section, Where, as_bool, as_mapping, as_str, list_of, one_of

# Config keys whose values change the embeddings a checkpoint gives (batch sizes and workers do not; amp does:
# a bf16 trunk on CPU). Their values as written make the config part of the extraction stamp.
STAMPED_KEYS = ("modality", "model", "model_args", "plugins", "dataset_args", "amp")
EVAL_LOADER_KEYS = ("batch_size", "num_workers", "pin_memory", "prefetch_factor")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The network and its evaluation inputs from a saved config (see the module docstring)."""

    modality: str
    model: ComponentArgs
    plugins: list[str]
    projection: ComponentArgs
    margin_update: MarginUpdate | None
    amp: bool
    dataset_args: Section            # the kind's dataset section: its eval keys read, the others at defaults
    eval_dataloader_args: DataLoaderArgs
    stamped: dict[str, Any]          # STAMPED_KEYS as written (absent: None), for the extraction stamp


def _section(cls: type[Section], data: Any, keys: tuple[str, ...], where: Where) -> Any:
    """cls parsed from the `keys` of mapping `data` (other keys not read)."""
    data = as_mapping(data, where)
    return cls.from_dict({k: data[k] for k in keys if k in data}, where)


def parse_model_config(cfg: Mapping[str, Any], sources: Mapping[str, str] | None = None,
                       default_modality: str | None = None) -> ModelConfig:
    """Validate the keys a saved config's model and eval inputs need -> ModelConfig (`sources`: key -> file)."""
    top = Where("", key_sources(cfg) if sources is None else sources)
    if not isinstance(cfg, Mapping):
        raise top.error(f"expected a mapping, got {type(cfg).__name__}")
    for key in ("modality", "model"):
        if key not in cfg and not (key == "modality" and default_modality):
            raise top.error(f"missing required key '{key}'")
    stamped = {key: cfg.get(key) for key in STAMPED_KEYS}
    cfg = without_runtime_keys(cfg, top)
    modality = one_of(*MODALITIES)(cfg.get("modality", default_modality), top.key("modality"))
    kind = kind_of(modality)
    plugins = [] if cfg.get("plugins") is None else list_of(as_str)(cfg["plugins"], top.key("plugins"))
    # A saved config is someone's file: its plugins are imported only when allowed (registry.py); then the
    # import in parse_model_and_head finds them loaded.
    import_saved_plugins(plugins, top.key("plugins").source() or "the saved model config")
    model, projection, margin_update = parse_model_and_head(cfg, top, modality, plugins)
    loader_key = "eval_dataloader_args" if cfg.get("eval_dataloader_args") else "dataloader_args"
    return ModelConfig(
        modality=modality, model=model, plugins=plugins, projection=projection, margin_update=margin_update,
        amp=as_bool(False if cfg.get("amp") is None else cfg["amp"], top.key("amp")),
        dataset_args=_section(kind.dataset_section, cfg.get("dataset_args"), kind.eval_dataset_keys,
                              top.key("dataset_args")),
        eval_dataloader_args=_section(DataLoaderArgs, cfg.get(loader_key), EVAL_LOADER_KEYS, top.key(loader_key)),
        stamped=stamped)


def load_model_config(path: PathLike, default_modality: str | None = None) -> ModelConfig:
    """parse_model_config of the yaml file `path`; its errors name the file."""
    cfg = load_config(path)
    return parse_model_config(cfg, {"": os.fspath(path), **key_sources(cfg)}, default_modality)


def exp_model_config(exp_dir: str) -> ModelConfig:
    """The ModelConfig of a trained exp dir (its config.yaml)."""
    return load_model_config(os.path.join(exp_dir, "config.yaml"))


MODEL_DIR_FILES = ("avg_model.pt", "config.yaml")  # a WeSpeaker model dir (and our models/)


def model_init_files(path: str) -> tuple[str, str | None]:
    """(model file, its config or None) of a `model_init`: a model file, or a model dir holding avg_model.pt and
    config.yaml (WeSpeaker's pretrained-model dirs, a config saved by WeSpeaker's train.py, our models/)."""
    if not os.path.isdir(path):
        return path, None
    model_file, config = (os.path.join(path, name) for name in MODEL_DIR_FILES)
    missing = [name for name in MODEL_DIR_FILES if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise FileNotFoundError(f"model_init {path}: a model dir needs {' and '.join(MODEL_DIR_FILES)}; "
                                f"{', '.join(missing)} missing")
    return model_file, config


def _bound_args(modality: str, model: ComponentArgs) -> dict[str, Any]:
    """model.args with the constructor's defaults filled in (so an argument written out equals its default)."""
    cls = kind_of(modality).encoder_registry.get(model.name)
    bound = inspect.signature(cls).bind_partial(**dict(model.args))
    bound.apply_defaults()
    return dict(bound.arguments)


def check_model_init_config(config: str, modality: str, model: ComponentArgs) -> None:
    """Refuse a model_init dir whose config.yaml (loaded as bin.embed loads it) builds another network than the
    student's: another model, or model_args that differ once defaults are filled in (ConfigError naming both)."""
    init = load_model_config(config, default_modality=modality)
    where = Where("", {"model": config, "model_args": config})
    if init.model.name != model.name:
        raise where.key("model").error(f"model_init is a {init.model.name}, the config trains a {model.name}")
    theirs, ours = _bound_args(init.modality, init.model), _bound_args(modality, model)
    differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
    if differ:
        raise where.key("model_args").error(
            "model_init's network differs from the one trained here in "
            + ", ".join(f"{k} ({theirs.get(k)!r} there, {ours.get(k)!r} here)" for k in differ))
