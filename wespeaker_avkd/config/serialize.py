"""A TrainConfig as yaml: what exp_dir/config.yaml records, and the typed comparison a resumed run makes.

`config_to_dict` writes every key of the schema with its value, defaults filled in (sections' defaults, the
constructors' defaults of model, head, optimizer and schedule), in the order of the TrainConfig fields;
`load_saved_config` (config/train_config.py) reads it back to an equal TrainConfig. `config_diff` compares two
TrainConfigs key by key (dotted keys, old and new value): a default changed since a run was trained shows as a
change of that key, because config.yaml wrote the old default. A config.yaml written before every default was
recorded lacks some keys; parsing fills them with today's defaults, so such a run resumes as long as nothing it
did write changed.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from wespeaker_avkd.config.loading import save_config
from wespeaker_avkd.config.sections import ComponentArgs, KDConfig
from wespeaker_avkd.config.train_config import TrainConfig
from wespeaker_avkd.utils.fileio import PathLike

# TrainConfig's component fields -> (key of the name, key of the arguments) in the yaml; the head's name is
# projection_args.project_type.
COMPONENT_KEYS = {"model": ("model", "model_args"), "optimizer": ("optimizer", "optimizer_args"),
                  "scheduler": ("scheduler", "scheduler_args")}


def _value(value: Any) -> Any:
    """A field's value as yaml writes it: sections as mappings, lists and mappings copied."""
    if isinstance(value, KDConfig):
        return value.to_dict()
    if dataclasses.is_dataclass(value):
        return {f.name: _value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in value]
    return value


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Every key of `cfg` (defaults included) in our key names, in TrainConfig's field order."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name == "projection":
            out["projection_args"] = {"project_type": value.name, **_value(value.args)}
        elif isinstance(value, ComponentArgs):
            name_key, args_key = COMPONENT_KEYS[f.name]
            out[name_key] = value.name
            out[args_key] = _value(value.args)
        else:
            out[f.name] = _value(value)
    return out


def save_train_config(cfg: TrainConfig, path: PathLike) -> None:
    """Write config_to_dict(cfg) to `path` atomically (exp_dir/config.yaml)."""
    save_config(config_to_dict(cfg), path)


def dict_diff(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) of every leaf where two nested mappings differ (an absent key: None)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            path = f"{prefix}.{key}" if prefix else str(key)
            out += dict_diff(old.get(key), new.get(key), path)
        return out
    return [] if old == new else [(prefix, old, new)]


def config_diff(old: TrainConfig, new: TrainConfig) -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) of every key whose typed value differs between two configs."""
    return dict_diff(config_to_dict(old), config_to_dict(new))
