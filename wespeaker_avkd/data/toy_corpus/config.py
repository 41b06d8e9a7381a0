"""Corpus knobs: the packaged default yaml deep-merged with a user yaml and CLI overrides."""
from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping
from typing import Any

from wespeaker_avkd.utils.errors import NamedError
from wespeaker_avkd.utils.yaml_io import load_yaml

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "toy_corpus.yaml")


class CorpusConfigError(NamedError, ValueError):
    """A bad toy corpus knob (unknown key, wrong type, out of range); the message names the key and its source."""


def _kind(value: Any) -> str | None:
    """The kind of value a default knob stands for: 'true or false', 'an integer', 'a number', ... (None: any)."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return None


def _describe(default: Any) -> str:
    """What a value for knob `default` must be, in words ('an integer', 'a list of numbers', ...)."""
    kind = _kind(default)
    items = {_kind(d) for d in default} if isinstance(default, list) else set()
    if kind == "a list" and len(items) == 1 and None not in items:
        return "a list of " + {"an integer": "integers", "a number": "finite numbers", "a string": "strings",
                               "true or false": "true/false values", "a list": "lists"}[items.pop()]
    return "a finite number" if kind == "a number" else str(kind)


def _fits(default: Any, value: Any) -> bool:
    """Whether `value` has the kind of `default` (an int fits a float knob; numbers must be finite; a list's items
    must have the kind its default items share)."""
    kind = _kind(default)
    if kind == "true or false":
        return isinstance(value, bool)
    if kind == "an integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "a number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "a string":
        return isinstance(value, str)
    if kind == "a list":
        if not isinstance(value, list):
            return False
        item_kinds = {_kind(d) for d in default}
        if len(item_kinds) != 1 or not default:
            return True
        if "an integer" in item_kinds:  # [min, max] of counts: every item an integer
            return all(_fits(default[0], v) for v in value)
        return all(_fits(default[i if i < len(default) else 0], v) for i, v in enumerate(value))
    return True


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any], where: str = "", source: str = "") -> dict:
    """Recursively merge override into a copy of base; unknown keys and values of another kind than the default's
    (e.g. 'abc' or 2.5 for an integer knob, .nan for a number) raise CorpusConfigError naming the key and `source`."""
    out = copy.deepcopy(dict(base))
    at = f"toy corpus config{' ' + source if source else ''}"
    if not isinstance(override, Mapping):
        raise CorpusConfigError(f"{at}: '{where.rstrip('.') or '(top level)'}' must be a mapping, got {override!r}")
    for key, value in override.items():
        if key not in out:
            raise CorpusConfigError(f"{at}: unknown key '{where}{key}' (known: {', '.join(sorted(out))})")
        if isinstance(out[key], dict):
            out[key] = deep_merge(out[key], value, f"{where}{key}.", source)
            continue
        if not _fits(out[key], value):
            raise CorpusConfigError(f"{at}: key '{where}{key}' must be {_describe(out[key])} like its default "
                                    f"{out[key]!r}, got {value!r}")
        out[key] = copy.deepcopy(value)
    return out


def check_table_root(path: str) -> str:
    """The absolute `path`; CorpusConfigError when it holds whitespace, which the corpus tables cannot carry
    (faces.scp lists a segment's frame paths separated by spaces, and Kaldi tables have no quoting)."""
    path = os.path.abspath(path)
    if any(c.isspace() for c in path):
        raise CorpusConfigError(f"corpus output dir {path!r} contains whitespace: its tables (faces.scp lists frame "
                                "paths separated by spaces; Kaldi tables cannot quote) could not name the files; "
                                "choose a path without spaces")
    return path


def load_config(path: str | None = None, overrides: Mapping[str, Any] | None = None) -> dict:
    """Default knobs (wespeaker_avkd/data/toy_corpus.yaml), then the yaml at `path`, then `overrides`."""
    cfg = load_yaml(DEFAULT_CONFIG)
    if path:
        cfg = deep_merge(cfg, load_yaml(path) or {}, source=path)
    if overrides:
        cfg = deep_merge(cfg, overrides, source="(command line)")
    return cfg
