"""Yaml training configs: load (several files deep-merged), command-line overrides, KD weight presets, save.

Every key of a training config is read by some component or refused: `parse_train_config` checks the whole
config once against the typed sections below (TrainConfig and its parts; models, heads, losses, optimizers and
schedules against their constructors' signatures), naming the file and key of any unknown key (with a "did
you mean"), wrong type or out-of-range value. WeSpeaker's names are accepted where they mean the same
(`enable_amp`, scalar `num_frms`, `save_epoch_interval`); WeSpeaker features not implemented here
(augmentation, ...) are refused by name.

Overrides come as `key.sub=value`, `--key.sub=value` or `--key.sub value`; values are parsed as yaml
(`2` -> int, `[200, 400]` -> list, `true` -> bool). An override must name an existing key, so a typo is an
error; prefix it with `+` (`+kd.adapter=true`) to add a new key on purpose.
"""
from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from wespeaker_avkd.data.dataset_args import (
    AUGMENT_SETS,
    WESPEAKER_UNSUPPORTED_DATASET,
    DataLoaderArgs,
    num_frms,
)
from wespeaker_avkd.kinds import kind_of
from wespeaker_avkd.utils.fileio import PathLike, atomic_write
from wespeaker_avkd.utils.naming import MODALITIES
from wespeaker_avkd.utils.schema import (
    ConfigError,
    Section,
    Where,
    as_bool,
    as_float,
    as_int,
    as_mapping,
    as_str,
    check_keys,
    check_kwargs,
    dotted_paths,
    field,
    list_of,
    nonneg_int,
    one_of,
    opt_str,
    positive_int,
    refuse_keys,
    suggest,
)
from wespeaker_avkd.utils.yaml_io import YamlError
from wespeaker_avkd.utils.yaml_io import load_yaml as read_yaml
from wespeaker_avkd.utils.yaml_io import loads as yaml_loads

Config = dict[str, Any]


__all__ = ["ConfigError", "ConfigDict", "TrainConfig", "parse_train_config", "load_config", "apply_overrides",
           "resolve_kd_preset", "save_config"]


class ConfigDict(dict):
    """A config mapping that remembers which file (or override) set each dotted key, for error messages."""

    sources: dict[str, str]


def key_sources(cfg: Mapping[str, Any]) -> dict[str, str]:
    """Dotted key -> file (or 'command-line override') recorded by load_config / apply_overrides."""
    return dict(getattr(cfg, "sources", None) or {})


def load_yaml(path: PathLike) -> Config:
    """Read one yaml file that must hold a mapping (an empty file is {})."""
    path = os.fspath(path)
    try:
        data = read_yaml(path)  # bounded: size, alias expansion and depth (utils/yaml_io.py)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except YamlError as err:
        raise ConfigError(f"config file {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> Config:
    """A copy of `base` with `update` merged in: nested mappings merge key by key, other values replace."""
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(paths: PathLike | Sequence[PathLike]) -> Config:
    """Load one config or several deep-merged in order (later files win)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    cfg: Config = {}
    sources: dict[str, str] = {}
    for path in paths:
        data = load_yaml(path)
        cfg = deep_merge(cfg, data)
        sources.update({key: os.fspath(path) for key in dotted_paths(data)})
    out = ConfigDict(cfg)
    out.sources = sources
    return out


def parse_override_args(tokens: Sequence[str]) -> list[tuple]:
    """Turn ['--num_epochs', '2', 'kd.alpha=1', '--a.b=c'] into [('num_epochs', '2'), ('kd.alpha', '1'), ...]."""
    pairs = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        body = token[2:] if token.startswith("--") else token
        if "=" in body:
            key, value = body.split("=", 1)
            i += 1
        elif token.startswith("--"):
            if i + 1 >= len(tokens):
                raise ConfigError(f"override {token!r} has no value (expected '{token} VALUE' or '{token}=VALUE')")
            key, value = body, tokens[i + 1]
            i += 2
        else:
            raise ConfigError(f"cannot read override {token!r}: expected key.sub=value or --key.sub value")
        if not key.lstrip("+"):
            raise ConfigError(f"override {token!r} names no key")
        pairs.append((key, value))
    return pairs


def set_by_path(cfg: Config, dotted: str, value: Any) -> None:
    """Set cfg[a][b][c] = value for dotted 'a.b.c'; a leading '+' allows creating keys that do not exist."""
    create = dotted.startswith("+")
    parts = dotted.lstrip("+").split(".")
    node: Any = cfg
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "(top level)"
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {where} is a {type(node).__name__}, not a mapping")
        last = depth == len(parts) - 1
        if part not in node:
            if not create:
                raise ConfigError(f"override {dotted!r}: no key {part!r} under {where} (known: "
                                  f"{', '.join(sorted(map(str, node))) or 'none'}); write +{dotted}=... to add it")
            if not last:
                node[part] = {}
        if last:
            node[part] = value
        else:
            if node[part] is None and create:
                node[part] = {}
            node = node[part]


def apply_overrides(cfg: Config, overrides: Iterable[tuple]) -> Config:
    """A copy of cfg with every (dotted key, yaml-text value) override applied in order."""
    sources = key_sources(cfg)
    cfg = ConfigDict(copy.deepcopy(dict(cfg)))
    cfg.sources = sources
    for key, text in overrides:
        try:
            value = yaml_loads(text, f"override {key}={text!r}") if isinstance(text, str) else text
        except YamlError as err:  # 'override key=text: not valid yaml: ...'
            raise ConfigError(str(err)) from err
        set_by_path(cfg, key, value)
        bare = key.lstrip("+")
        sources.update({k: "command-line override" for k in [bare] + [f"{bare}.{p}" for p in dotted_paths(value)]})
    return cfg


def resolve_kd_preset(kd_cfg: Mapping[str, Any] | None, modality: str) -> Config | None:
    """Expand `kd: {combo: KL+MMD, weights_file: conf/kd_weights.yaml}` into the combo's weights for `modality`.

    kd_weights.yaml maps modality -> combo -> kd block (Eq. 7 shorthand or `losses:` form). The kd block is
    merged over the chosen entry: a weight set in the kd block itself (e.g. the override `+kd.beta=10`) wins
    over the preset's.
    """
    if not kd_cfg:
        return None
    kd = dict(kd_cfg)
    combo = kd.pop("combo", None)
    weights_file = kd.pop("weights_file", None)
    if combo is None:
        return kd
    if weights_file is None:
        raise ConfigError(f"kd.combo={combo!r} needs kd.weights_file (a yaml of modality -> combo -> weights)")
    table = load_yaml(weights_file)
    if modality not in table:
        raise ConfigError(f"{weights_file}: no section {modality!r} (found: {', '.join(sorted(table))})")
    combos = table[modality]
    if combo not in combos:
        raise ConfigError(f"{weights_file}: section {modality!r} has no combo {combo!r} "
                          f"(found: {', '.join(sorted(combos))})")
    resolved = deep_merge(combos[combo], kd)
    resolved["combo"] = combo
    return resolved


def save_config(cfg: Mapping[str, Any], path: PathLike) -> None:
    """Write cfg as yaml atomically (key order kept)."""
    with atomic_write(path) as f:
        yaml.safe_dump(dict(cfg), f, sort_keys=False, default_flow_style=None)


# ====================================================================== the typed schema of a training config
# (the dataset and loader sections are data/dataset_args.py's; what is here is the rest of a training config)
_OLD_LMDB = "an older WeSpeaker name: write reverb_data / noise_data (a wav.scp, or an lmdb dir)"
# A WeSpeaker run's own keys. WeSpeaker's v2 run.sh always passes both on train.py's command line, which overrides
# the yaml; here bin.train's --exp_dir and torchrun (or --device) play that part. They are checked and set aside
# (config.yaml does not record them: they describe another run's place and devices, not the experiment).
WESPEAKER_RUN_KEYS = ("exp_dir", "gpus")  # exp_dir: bin.train's --exp_dir; gpus: torchrun --nproc_per_node N
WESPEAKER_UNSUPPORTED_TOP = {
    "data_type": "write dataset_args.data_type (shard|raw|feat): train_data is a Kaldi data dir, its shard "
                 "list <train_data>/shard.list",
    "train_label": "labels come from train_data/utt2spk",
    "reverb_lmdb": _OLD_LMDB, "noise_lmdb": _OLD_LMDB,
}
# Top-level in WeSpeaker, read into the audio dataset_args: the sets of train.py's --reverb_data / --noise_data,
# and do_lm (large-margin fine-tuning: its train.py then turns speed perturbation off in the data, keeping the
# head's 3 classes per speaker).

TOP_DATASET_KEYS = (*AUGMENT_SETS, "do_lm")



@dataclasses.dataclass(frozen=True)
class MarginUpdate(Section):
    """margin_update (models/margin_scheduler.py:MarginScheduler)."""

    initial_margin: float = field(parse=lambda v, w: _nonneg(v, w))
    final_margin: float = field(parse=lambda v, w: _nonneg(v, w))
    increase_start_epoch: int = field(parse=nonneg_int)
    fix_start_epoch: int = field(parse=nonneg_int)
    increase_type: str = field("exp", one_of("exp", "linear"))
    update_margin: bool = field(True, as_bool)

    def check(self, where: Where) -> None:
        """fix_start_epoch >= increase_start_epoch."""
        if self.fix_start_epoch < self.increase_start_epoch:
            raise where.key("fix_start_epoch").error(
                f"must be >= increase_start_epoch ({self.increase_start_epoch}), got {self.fix_start_epoch}")


def _nonneg(value: Any, where: Where) -> float:
    v = as_float(value, where)
    if v < 0:
        raise where.error(f"must be >= 0, got {value}")
    return v


@dataclasses.dataclass(frozen=True)
class EmbeddingDirs(Section):
    """embedding_dirs of the fusion teacher: <dir>/<subset>/xvector.scp per input modality."""

    audio: str = field(parse=as_str)
    visual: str = field(parse=as_str)


@dataclasses.dataclass(frozen=True)
class KDConfig(Section):
    """The kd block of a student after the preset is resolved: the recipe's keys plus the loss spec
    (losses/kd_objective.py:kd_term_specs validates the loss keys)."""

    teacher_dir: str
    combo: str | None
    weights_file: str | None
    terms: dict[str, dict[str, Any]]
    adapter: bool

    RECIPE_KEYS = ("teacher_dir", "combo", "weights_file")

    @classmethod
    def from_dict(cls, data: Any, where: Where) -> KDConfig:
        """Validate a resolved kd block."""
        from wespeaker_avkd.losses.kd_objective import kd_term_specs

        data = as_mapping(data, where)
        terms = kd_term_specs(data, where, extra_keys=cls.RECIPE_KEYS)
        if "teacher_dir" not in data:
            raise where.error("missing required key 'kd.teacher_dir' (the teacher's kd_export dir)")
        return cls(as_str(data["teacher_dir"], where.key("teacher_dir")),
                   opt_str(data.get("combo"), where.key("combo")),
                   opt_str(data.get("weights_file"), where.key("weights_file")), terms,
                   as_bool(data.get("adapter", False), where.key("adapter")))


@dataclasses.dataclass(frozen=True)
class ComponentArgs:
    """A registry component's name and its constructor kwargs (checked against the class signature)."""

    name: str
    args: dict[str, Any]


def _registry_component(registry: Any, name: Any, args: Any, where_name: Where, where_args: Where,
                        supplied: Sequence[str] = ()) -> ComponentArgs:
    """Look `name` up in `registry` and check `args` against its constructor."""
    if not isinstance(name, str) or name not in registry:
        raise where_name.error(f"unknown {registry.kind} {name!r}{suggest(name, registry.names())} (registered: "
                               f"{', '.join(registry.names())}; plugins register with @"
                               f"{registry.kind.upper()}S.register and are listed under 'plugins')")
    cls = registry.get(name)
    return ComponentArgs(name, check_kwargs(cls, as_mapping(args, where_args), where_args, supplied=supplied,
                                            what=f"{registry.kind} {name}"))


def parse_model_and_head(cfg: Mapping[str, Any], top: Where, modality: str,
                         plugins: Sequence[str]) -> tuple[ComponentArgs, ComponentArgs, MarginUpdate | None]:
    """(model, AAM head, margin_update or None) of a config, checked against the registries (plugins imported)."""
    from wespeaker_avkd.registry import PROJECTIONS, import_plugins

    import_plugins(plugins)
    model = _registry_component(kind_of(modality).encoder_registry, cfg.get("model"), cfg.get("model_args"),
                                top.key("model"), top.key("model_args"))
    proj_args = as_mapping(cfg.get("projection_args"), top.key("projection_args"))
    margin = as_mapping(cfg.get("margin_update"), top.key("margin_update"))
    if margin and "margin" in proj_args:
        raise top.key("projection_args.margin").error("is not read when margin_update is given (the schedule "
                                                      "sets the margin): set margin_update's margins instead")
    project_type = proj_args.pop("project_type", "arc_margin")
    projection = _registry_component(PROJECTIONS, project_type, proj_args, top.key("projection_args.project_type"),
                                     top.key("projection_args"), supplied=("embed_dim", "num_class"))
    return model, projection, MarginUpdate.from_dict(margin, top.key("margin_update")) if margin else None


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
                "projection_args", "margin_update", "optimizer_args", "scheduler_args", "kd", "loss_args")
    ALIASES = {"enable_amp": "amp"}
    DEFAULTS = {"modality": "audio", "seed": 42, "num_avg": 1, "log_batch_interval": 10, "save_epoch_interval": 1,
                "keep_checkpoints": None, "amp": False, "tensorboard": True, "model_init": None, "plugins": None,
                "optimizer": "SGD", "scheduler": "ExponentialDecrease"}
    REQUIRED = ("model", "train_data", "num_epochs", "scheduler_args")


def _optimizer_class(name: Any, where: Where) -> Any:
    """The torch optimizer class build_optimizer uses for `name`."""
    import torch

    from wespeaker_avkd.train import optim

    # optim.OPTIMIZERS when that module exposes its table; until then the same three torch classes.
    OPTIMIZERS = getattr(optim, "OPTIMIZERS", None) or {n: getattr(torch.optim, n) for n in ("SGD", "Adam", "AdamW")}
    if name not in OPTIMIZERS:
        raise where.error(f"unknown optimizer {name!r}{suggest(name, OPTIMIZERS)} (known: {', '.join(OPTIMIZERS)})")
    return OPTIMIZERS[name]


# Scheduler arguments a schedule's constructor accepts but does not use.
SCHEDULER_UNREAD = {"ConstantLR": {"final_lr": "ConstantLR keeps initial_lr (after the warm-up)"}}


def _scheduler_class(name: Any, where: Where) -> Any:
    """The schedule class of optim.SCHEDULERS named `name`."""
    from wespeaker_avkd.train.optim import SCHEDULERS

    if name not in SCHEDULERS:
        raise where.error(f"unknown scheduler {name!r}{suggest(name, SCHEDULERS)} (known: {', '.join(SCHEDULERS)})")
    return SCHEDULERS[name]


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


def parse_train_config(cfg: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> TrainConfig:
    """Validate every key of a training config (its kd preset already resolved) -> TrainConfig.

    `sources` (dotted key -> file; default: what load_config recorded) lets messages name the file.
    """
    top = Where("", key_sources(cfg) if sources is None else sources)
    if not isinstance(cfg, Mapping):
        raise top.error(f"expected a mapping, got {type(cfg).__name__}")
    cfg = without_run_keys(cfg, top)
    unsupported = {k: WESPEAKER_UNSUPPORTED_TOP[k] for k in cfg if k in WESPEAKER_UNSUPPORTED_TOP}
    if isinstance(cfg.get("dataset_args"), Mapping):  # all of them in one message, as a porting checklist
        unsupported.update({f"dataset_args.{k}": WESPEAKER_UNSUPPORTED_DATASET[k] for k in cfg["dataset_args"]
                            if k in WESPEAKER_UNSUPPORTED_DATASET})
    refuse_keys(unsupported, top, "WeSpeaker config keys whose feature this toolkit does not implement (remove "
                                  "them, also when disabled: the experiment would silently differ)")
    check_keys(cfg, list(TrainConfig.SIMPLE) + list(TrainConfig.SECTIONS) + list(TrainConfig.ALIASES)
               + list(TOP_DATASET_KEYS), top)
    cfg = normalize_synonyms(cfg, top)
    cfg = top_keys_into_dataset_args(cfg, top)
    for key in TrainConfig.REQUIRED:
        if key not in cfg:
            raise top.error(f"missing required key '{key}'")
    v = {k: TrainConfig.SIMPLE[k](cfg.get(k, TrainConfig.DEFAULTS.get(k)), top.key(k))
         for k in TrainConfig.SIMPLE if k in cfg or k in TrainConfig.DEFAULTS}
    modality = v["modality"]
    kind = kind_of(modality)
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

    model, projection, margin_update = parse_model_and_head(cfg, top, modality, v["plugins"])
    opt_where = top.key("optimizer_args")
    opt_args = as_mapping(cfg.get("optimizer_args"), opt_where)
    if "lr" in opt_args:
        raise opt_where.key("lr").error("is not read: the schedule sets the learning rate every iteration "
                                        "(scheduler_args.initial_lr / final_lr)")
    optimizer = ComponentArgs(v["optimizer"], check_kwargs(_optimizer_class(v["optimizer"], top.key("optimizer")),
                                                           opt_args, opt_where, supplied=("params", "lr")))
    sched_cls = _scheduler_class(v["scheduler"], top.key("scheduler"))
    sched_args = as_mapping(cfg.get("scheduler_args"), top.key("scheduler_args"))
    check_keys(sched_args, list(sched_args), top.key("scheduler_args"), SCHEDULER_UNREAD.get(v["scheduler"], {}),
               refused_intro=f"scheduler_args not read by {v['scheduler']}")
    scheduler = ComponentArgs(v["scheduler"], check_kwargs(sched_cls, sched_args, top.key("scheduler_args"),
                                                           supplied=("optimizer", "num_epochs", "epoch_iter")))
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
        projection=projection, margin_update=margin_update, optimizer=optimizer, scheduler=scheduler,
        kd=KDConfig.from_dict(cfg["kd"], top.key("kd")) if cfg.get("kd") else None)
