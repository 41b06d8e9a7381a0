"""Yaml training configs: load (several files deep-merged), command-line overrides, KD weight presets, save.

Overrides come as `key.sub=value`, `--key.sub=value` or `--key.sub value`; values are parsed as yaml
(`2` -> int, `[200, 400]` -> list, `true` -> bool). An override must name an existing key, so a typo is an
error; prefix it with `+` (`+kd.adapter=true`) to add a new key on purpose.
"""
from __future__ import annotations

import copy
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import yaml

from wespeaker_avkd.utils.fileio import atomic_write

PathLike = Union[str, "os.PathLike[str]"]
Config = Dict[str, Any]


class ConfigError(ValueError):
    """A bad config file or override; the message names the file or key and what was expected."""


def load_yaml(path: PathLike) -> Config:
    """Read one yaml file that must hold a mapping (an empty file is {})."""
    path = os.fspath(path)
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid yaml: {err}") from err
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


def load_config(paths: Union[PathLike, Sequence[PathLike]]) -> Config:
    """Load one config or several deep-merged in order (later files win)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    cfg: Config = {}
    for path in paths:
        cfg = deep_merge(cfg, load_yaml(path))
    return cfg


def parse_override_args(tokens: Sequence[str]) -> List[tuple]:
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
    cfg = copy.deepcopy(cfg)
    for key, text in overrides:
        try:
            value = yaml.safe_load(text) if isinstance(text, str) else text
        except yaml.YAMLError as err:
            raise ConfigError(f"override {key}={text!r}: value is not valid yaml: {err}") from err
        set_by_path(cfg, key, value)
    return cfg


def resolve_kd_preset(kd_cfg: Optional[Mapping[str, Any]], modality: str) -> Optional[Config]:
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


def require(cfg: Mapping[str, Any], dotted: str, where: str = "config") -> Any:
    """cfg['a']['b'] for 'a.b'; a missing key raises ConfigError naming it."""
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(f"{where}: missing required key {dotted!r}")
        node = node[part]
    return node
