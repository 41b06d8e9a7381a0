"""The whole typed training config (TrainConfig) and its parse: `parse_config` for a config to train,
`load_saved_config` for an exp dir's config.yaml.

Every key of a training config is read by some component or refused: `parse_train_config` checks the whole
config once against the typed sections (config/sections.py; models, heads, optimizers and schedules against
their constructors' signatures, config/components.py), naming the file and key of any unknown key (with a "did
you mean"), wrong type or out-of-range value, and fills every default. WeSpeaker's names are accepted where they
mean the same (`enable_amp`, scalar `num_frms`, `save_epoch_interval`); WeSpeaker features not implemented here
(augmentation, ...) are refused by name. Loading and overrides are config/loading.py, KD presets
config/kd_preset.py, the yaml form of a TrainConfig config/serialize.py.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from wespeaker_avkd.config.components import parse_model_and_head, parse_optimizer, parse_scheduler
from wespeaker_avkd.config.kd_preset import DEFAULT_MODALITY, resolve_kd_preset, resolve_presets
from wespeaker_avkd.config.loading import (
    Config,
    ConfigDict,
    apply_overrides,
    deep_merge,
    key_sources,
    load_config,
    load_yaml,
    parse_override_args,
    save_config,
)
from wespeaker_avkd.config.sections import (
    TOP_DATASET_KEYS,
    WESPEAKER_RUN_KEYS,
    WESPEAKER_UNSUPPORTED_TOP,
    ComponentArgs,
    DevEval,
    EmbeddingDirs,
    KDConfig,
    MarginUpdate,
)
from wespeaker_avkd.data.dataset_args import WESPEAKER_UNSUPPORTED_DATASET, DataLoaderArgs, num_frms
from wespeaker_avkd.kinds import kind_of
from wespeaker_avkd.utils.fileio import PathLike
from wespeaker_avkd.utils.naming import MODALITIES
from wespeaker_avkd.utils.schema import (
    ConfigError,
    Section,
    Where,
    as_bool,
    as_int,
    as_mapping,
    as_str,
    check_keys,
    list_of,
    one_of,
    opt_str,
    positive_int,
    refuse_keys,
)

# The names other modules import from here (the loading, preset and section modules re-exported).
__all__ = ["ComponentArgs", "Config", "ConfigDict", "ConfigError",
           "DataLoaderArgs", "EmbeddingDirs", "KDConfig", "MarginUpdate",
           "TrainConfig", "apply_overrides", "deep_merge", "key_sources", "load_config",
           "load_saved_config", "load_yaml", "parse_config", "parse_model_and_head", "parse_override_args",
           "parse_train_config", "resolve_kd_preset", "save_config"]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A whole training config, every key validated (see the module docstring). Built by parse_train_config."""

    modality: str
    model: ComponentArgs
    train_data: str
    num_epochs: int
    seed: int
    num_avg: int
    log_batch_interval: int
    save_epoch_interval: int
    keep_checkpoints: int | None   # None: what averaging needs (the checkpoint code decides)
    amp: bool
    tensorboard: bool
    model_init: str | None
    plugins: list[str]
    embedding_dirs: EmbeddingDirs | None
    dataloader_args: DataLoaderArgs
    eval_dataloader_args: DataLoaderArgs | None
    dataset_args: Section
    projection: ComponentArgs
    margin_update: MarginUpdate | None
    optimizer: ComponentArgs
    scheduler: ComponentArgs
    kd: KDConfig | None
    dev_eval: DevEval | None       # the learning curve on dev (None: off)

    # Top-level keys and their parsers; the sections with their own logic are handled in parse_train_config.
    SIMPLE = {"modality": one_of(*MODALITIES), "model": as_str, "train_data": as_str,
              "num_epochs": positive_int, "seed": lambda v, w: as_int(v, w), "num_avg": positive_int,
              "log_batch_interval": positive_int, "save_epoch_interval": positive_int,
              "keep_checkpoints": lambda v, w: None if v is None else positive_int(v, w),
              "amp": as_bool, "tensorboard": as_bool, "model_init": opt_str,
              "plugins": lambda v, w: [] if v is None else list_of(as_str)(v, w),
              "margin_scheduler": one_of("MarginScheduler"), "loss": one_of("CrossEntropyLoss"),
              "optimizer": as_str, "scheduler": as_str}
    SECTIONS = ("model_args", "embedding_dirs", "dataloader_args", "eval_dataloader_args", "dataset_args",
                "projection_args", "margin_update", "optimizer_args", "scheduler_args", "kd", "loss_args",
                "dev_eval")
    ALIASES = {"enable_amp": "amp"}
    DEFAULTS = {"modality": DEFAULT_MODALITY, "seed": 42, "num_avg": 1, "log_batch_interval": 10,
                "save_epoch_interval": 1, "keep_checkpoints": None, "amp": False, "tensorboard": True,
                "model_init": None, "plugins": None, "optimizer": "SGD", "scheduler": "ExponentialDecrease"}
    REQUIRED = ("model", "train_data", "num_epochs", "scheduler_args")



def normalize_synonyms(cfg: Mapping[str, Any], where: Where) -> Config:
    """A copy of cfg with WeSpeaker's synonyms in our names: enable_amp -> amp, scalar num_frms -> [n, n]."""
    cfg = dict(cfg)
    for alias, name in TrainConfig.ALIASES.items():
        if alias in cfg:
            TrainConfig.SIMPLE[name](cfg[alias], where.key(alias))  # a bad value is named as the user wrote it
            if name in cfg and cfg[name] != cfg[alias]:
                raise where.key(alias).error(f"says {cfg[alias]!r} but '{name}' says {cfg[name]!r}; they are the "
                                             "same setting: keep one")
            cfg[name] = cfg.pop(alias)
    ds = cfg.get("dataset_args")
    if isinstance(ds, Mapping) and isinstance(ds.get("num_frms"), int) and not isinstance(ds["num_frms"], bool):
        cfg["dataset_args"] = {**ds, "num_frms": num_frms(ds["num_frms"], where.key("dataset_args.num_frms"))}
    return cfg


def top_keys_into_dataset_args(cfg: Mapping[str, Any], where: Where) -> Config:
    """A copy of cfg with WeSpeaker's top-level reverb_data / noise_data / do_lm moved into dataset_args (where
    the audio loader reads them); a key given in both places with different values is an error."""
    cfg = dict(cfg)
    sets = {k: cfg.pop(k) for k in TOP_DATASET_KEYS if k in cfg}
    if not sets:
        return cfg
    section = kind_of(cfg.get("modality", TrainConfig.DEFAULTS["modality"])).dataset_section
    unread = [k for k in sets if k not in {f.name for f in dataclasses.fields(section)}]
    if unread:
        raise where.key(unread[0]).error(f"is read by audio systems only (modality {cfg.get('modality')!r})")
    ds = dict(as_mapping(cfg.get("dataset_args"), where.key("dataset_args")))
    for key, value in sets.items():
        if key in ds and ds[key] != value:
            raise where.key(key).error(f"says {value!r} but dataset_args.{key} says {ds[key]!r}: keep one")
        ds[key] = value
    cfg["dataset_args"] = ds
    return cfg


def without_run_keys(cfg: Mapping[str, Any], where: Where) -> dict[str, Any]:
    """A copy of `cfg` without WeSpeaker's run keys (WESPEAKER_RUN_KEYS); an exp_dir that is not a string, or gpus
    that are not a GPU list (\"[0,1]\", 0, [0, 1]), is refused naming the file and key."""
    out = dict(cfg)
    if "exp_dir" in out and not isinstance(out["exp_dir"], str):
        raise where.key("exp_dir").error(f"must be a path (a string), got {out['exp_dir']!r}")
    gpus = out.get("gpus")
    if "gpus" in out and not (isinstance(gpus, (str, int)) and not isinstance(gpus, bool)
                              or isinstance(gpus, list) and all(isinstance(g, int) for g in gpus)):
        raise where.key("gpus").error(f"must be a GPU list such as \"[0,1]\", got {gpus!r}")
    for key in WESPEAKER_RUN_KEYS:
        out.pop(key, None)
    return out


def _check_top_keys(cfg: Mapping[str, Any], top: Where) -> None:
    """Refuse WeSpeaker keys whose feature is not implemented (all in one message, a porting checklist) and
    unknown top-level keys."""
    unsupported = {k: WESPEAKER_UNSUPPORTED_TOP[k] for k in cfg if k in WESPEAKER_UNSUPPORTED_TOP}
    if isinstance(cfg.get("dataset_args"), Mapping):
        unsupported.update({f"dataset_args.{k}": WESPEAKER_UNSUPPORTED_DATASET[k] for k in cfg["dataset_args"]
                            if k in WESPEAKER_UNSUPPORTED_DATASET})
    refuse_keys(unsupported, top, "WeSpeaker config keys whose feature this toolkit does not implement (remove "
                                  "them, also when disabled: the experiment would silently differ)")
    check_keys(cfg, list(TrainConfig.SIMPLE) + list(TrainConfig.SECTIONS) + list(TrainConfig.ALIASES)
               + list(TOP_DATASET_KEYS), top)


def _check_system_keys(cfg: Mapping[str, Any], v: Mapping[str, Any], top: Where) -> None:
    """The keys that depend on the system: loss_args, kd, embedding_dirs, keep_checkpoints vs num_avg."""
    kind = kind_of(v["modality"])
    if cfg.get("loss_args"):
        raise top.key("loss_args").error("the AAM cross-entropy takes no arguments (projection_args and "
                                         "margin_update configure the AAM head)")
    if cfg.get("kd") and not kind.distils:
        raise top.key("kd").error(f"the {kind.name} {kind.role} cannot be a KD student")
    if cfg.get("embedding_dirs") is not None and not kind.reads_embeddings:
        raise top.key("embedding_dirs").error("is read only by the fusion teacher (modality: fusion)")
    if kind.reads_embeddings and "embedding_dirs" not in cfg:
        raise top.error("missing required key 'embedding_dirs' (the fusion teacher's audio/visual embeddings)")
    if v["keep_checkpoints"] is not None and v["keep_checkpoints"] < v["num_avg"]:
        raise top.key("keep_checkpoints").error(f"must be >= num_avg ({v['num_avg']}): averaging needs the last "
                                                f"{v['num_avg']} checkpoints, got {v['keep_checkpoints']}")


def _simple_values(cfg: Mapping[str, Any], top: Where) -> dict[str, Any]:
    """The top-level scalar keys parsed, defaults filled in."""
    for key in TrainConfig.REQUIRED:
        if key not in cfg:
            raise top.error(f"missing required key '{key}'")
    return {k: TrainConfig.SIMPLE[k](cfg.get(k, TrainConfig.DEFAULTS.get(k)), top.key(k))
            for k in TrainConfig.SIMPLE if k in cfg or k in TrainConfig.DEFAULTS}


def parse_train_config(cfg: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> TrainConfig:
    """Validate every key of a training config (its kd preset already resolved) -> TrainConfig.

    `sources` (dotted key -> file; default: what load_config recorded) lets messages name the file.
    """
    top = Where("", key_sources(cfg) if sources is None else sources)
    if not isinstance(cfg, Mapping):
        raise top.error(f"expected a mapping, got {type(cfg).__name__}")
    cfg = without_run_keys(cfg, top)
    _check_top_keys(cfg, top)
    cfg = top_keys_into_dataset_args(normalize_synonyms(cfg, top), top)
    v = _simple_values(cfg, top)
    _check_system_keys(cfg, v, top)
    modality = v["modality"]
    kind = kind_of(modality)
    model, projection, margin_update = parse_model_and_head(cfg, top, modality, v["plugins"])
    eval_args = cfg.get("eval_dataloader_args")
    return TrainConfig(
        modality=modality, model=model, train_data=v["train_data"], num_epochs=v["num_epochs"], seed=v["seed"],
        num_avg=v["num_avg"], log_batch_interval=v["log_batch_interval"],
        save_epoch_interval=v["save_epoch_interval"], keep_checkpoints=v["keep_checkpoints"], amp=v["amp"],
        tensorboard=v["tensorboard"], model_init=v["model_init"], plugins=v["plugins"],
        embedding_dirs=(EmbeddingDirs.from_dict(cfg["embedding_dirs"], top.key("embedding_dirs"))
                        if kind.reads_embeddings else None),
        dataloader_args=DataLoaderArgs.from_dict(cfg.get("dataloader_args"), top.key("dataloader_args")),
        eval_dataloader_args=(None if eval_args is None else
                              DataLoaderArgs.from_dict(eval_args, top.key("eval_dataloader_args"))),
        dataset_args=kind.dataset_section.from_dict(cfg.get("dataset_args"), top.key("dataset_args")),
        projection=projection, margin_update=margin_update,
        optimizer=parse_optimizer(v["optimizer"], cfg.get("optimizer_args"), top),
        scheduler=parse_scheduler(v["scheduler"], cfg.get("scheduler_args"), top),
        kd=KDConfig.from_dict(cfg["kd"], top.key("kd")) if cfg.get("kd") else None,
        dev_eval=(DevEval.from_dict(cfg["dev_eval"], top.key("dev_eval")) if cfg.get("dev_eval") is not None
                  else None))


def parse_config(cfg: Mapping[str, Any]) -> TrainConfig:
    """The TrainConfig of a config to train (load_config + apply_overrides): its kd preset expanded
    (config/kd_preset.py), then every key validated and every default filled (parse_train_config)."""
    resolved, sources = resolve_presets(cfg)
    return parse_train_config(resolved, sources)


def load_saved_config(path: PathLike) -> TrainConfig:
    """The TrainConfig an exp dir's config.yaml records, as it is (its kd terms already resolved); a key it does
    not write (a config.yaml written before every default was recorded) takes today's default."""
    return parse_train_config(load_config(os.fspath(path)))
