"""Yaml training configs as mappings: load (several files deep-merged), command-line overrides, save.

Overrides come as `key.sub=value`, `--key.sub=value` or `--key.sub value`; values are parsed as yaml
(`2` -> int, `[200, 400]` -> list, `true` -> bool). An override must name an existing key, so a typo is an
error; prefix it with `+` (`+kd.adapter=true`) to add a new key on purpose. Every loaded mapping remembers the
file (or override) that set each dotted key, so the schema's messages (config/train_config.py) name it.
"""
from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from wespeaker_avkd.utils.fileio import PathLike, atomic_write
from wespeaker_avkd.utils.schema import ConfigError, dotted_paths
from wespeaker_avkd.utils.yaml_io import YamlError
from wespeaker_avkd.utils.yaml_io import load_yaml as read_yaml
from wespeaker_avkd.utils.yaml_io import loads as yaml_loads

Config = dict[str, Any]


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


class _PlainDumper(yaml.SafeDumper):
    """safe_dump without anchors: a value that appears twice is written twice (a config stays readable)."""

    def ignore_aliases(self, data: Any) -> bool:
        """Never write an alias."""
        return True


def save_config(cfg: Mapping[str, Any], path: PathLike) -> None:
    """Write cfg as yaml atomically (key order kept)."""
    with atomic_write(path) as f:
        yaml.dump(dict(cfg), f, Dumper=_PlainDumper, sort_keys=False, default_flow_style=None)
