"""Corpus knobs: the packaged default yaml deep-merged with a user yaml and CLI overrides."""
from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

from wespeaker_avkd.utils.yaml_io import load_yaml

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "toy_corpus.yaml")


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any], where: str = "") -> dict:
    """Recursively merge override into a copy of base; unknown keys raise (they are usually typos)."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if key not in out:
            raise KeyError(f"toy corpus config: unknown key '{where}{key}' (known: {', '.join(sorted(out))})")
        if isinstance(out[key], dict) and isinstance(value, Mapping):
            out[key] = deep_merge(out[key], value, f"{where}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | None = None, overrides: Mapping[str, Any] | None = None) -> dict:
    """Default knobs (wespeaker_avkd/data/toy_corpus.yaml), then the yaml at `path`, then `overrides`."""
    cfg = load_yaml(DEFAULT_CONFIG)
    if path:
        cfg = deep_merge(cfg, load_yaml(path) or {})
    if overrides:
        cfg = deep_merge(cfg, overrides)
    return cfg
