"""Typed config sections: every key is read or refused (with a "did you mean"), every value type- and range-checked.

A section is a dataclass deriving from Section; each field's metadata["parse"] turns the yaml value into the
typed value (or raises ConfigError naming the key). `Section.from_dict(mapping, where)` refuses unknown keys,
fills defaults and reports missing required ones. Components whose keys are a constructor's arguments
(models, losses, optimizers, plugins) are checked against that constructor's signature with `check_kwargs`.

`where` is a Where: the dotted key path plus a lookup of the file (or command-line override) each key came
from, so an error reads `conf/toy/kd.yaml: config key 'kd.gama' is not known (did you mean 'gamma'?) ...`.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from wespeaker_avkd.utils.errors import NamedError


class ConfigError(NamedError, ValueError):
    """A bad config file or override; the message names the file or key and what was expected."""


class Where:
    """A dotted key path inside a config plus the file each key path came from (for messages)."""

    def __init__(self, path: str = "", sources: Mapping[str, str] | None = None) -> None:
        """`path` e.g. 'dataset_args.fbank_args'; `sources` maps dotted key paths to file names."""
        self.path = path
        self.sources = dict(sources or {})

    def key(self, name: str) -> Where:
        """The location of key `name` under this one."""
        return Where(f"{self.path}.{name}" if self.path else str(name), self.sources)

    def source(self) -> str:
        """The file (or 'command-line override') that set this key or its nearest parent, '' if unknown."""
        parts = self.path.split(".")
        for n in range(len(parts), 0, -1):
            src = self.sources.get(".".join(parts[:n]))
            if src:
                return src
        return ""

    def error(self, message: str) -> ConfigError:
        """ConfigError '<file>: config key '<path>': message'."""
        src = self.source()
        where = f"config key '{self.path}'" if self.path else "config"
        return ConfigError(f"{src + ': ' if src else ''}{where}: {message}")

    def __str__(self) -> str:
        return self.path or "(top level)"


def suggest(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest known name, or ''."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def refuse_keys(bad: Mapping[str, str], where: Where, intro: str) -> None:
    """Raise one ConfigError listing every refused key (dotted path under `where` -> reason), if any."""
    if bad:
        first = where.key(next(iter(bad)))
        lines = "; ".join(f"'{where.key(k).path}' ({why})" for k, why in bad.items())
        src = first.source()
        raise ConfigError(f"{src + ': ' if src else ''}{intro}: {lines}")


def check_keys(data: Mapping[str, Any], known: Iterable[str], where: Where,
               refused: Mapping[str, str] | None = None, what: str = "",
               refused_intro: str = "config keys not supported by this toolkit (remove them, also when disabled: "
                                    "the experiment would silently differ)") -> None:
    """Refuse keys of `data` in `refused` (all listed, with reasons) and keys not in `known` (with a suggestion)."""
    known = list(known)
    refused = refused or {}
    refuse_keys({k: refused[k] for k in data if k in refused}, where, refused_intro)
    for k in data:
        if k not in known:
            raise where.key(k).error(
                f"is not known{suggest(k, known)}; keys read{' by ' + what if what else ''} under {where}: "
                f"{', '.join(sorted(known)) or 'none'}")


# ------------------------------------------------------------------ value parsers (value, where) -> value
def as_mapping(value: Any, where: Where) -> dict[str, Any]:
    """A mapping (None -> {})."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise where.error(f"expected a mapping, got {type(value).__name__} {value!r}")
    return dict(value)


def as_bool(value: Any, where: Where) -> bool:
    """true/false."""
    if not isinstance(value, bool):
        raise where.error(f"expected true or false, got {value!r}")
    return value


def as_str(value: Any, where: Where) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise where.error(f"expected a non-empty string, got {value!r}")
    return value


def opt_str(value: Any, where: Where) -> str | None:
    """A string or null."""
    return None if value is None else as_str(value, where)


def as_int(value: Any, where: Where, low: int | None = None) -> int:
    """An integer (not a bool, not 2.5), >= low when given."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(f"expected an integer, got {value!r}")
    if low is not None and value < low:
        raise where.error(f"must be {'a positive integer' if low == 1 else f'an integer >= {low}'}, got {value}")
    return value


def as_float(value: Any, where: Where, low: float | None = None, strict: bool = False) -> float:
    """A finite number (.nan and .inf refused); > low when strict, else >= low."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.error(f"expected a number, got {value!r}")
    check_finite(value, where)
    if low is not None and (value <= low if strict else value < low):
        raise where.error(f"must be {'>' if strict else '>='} {low:g}, got {value}")
    return float(value)


def positive_int(value: Any, where: Where) -> int:
    """An integer >= 1."""
    return as_int(value, where, 1)


def nonneg_int(value: Any, where: Where) -> int:
    """An integer >= 0."""
    return as_int(value, where, 0)


def positive(value: Any, where: Where) -> float:
    """A number > 0."""
    return as_float(value, where, 0.0, strict=True)


def nonneg(value: Any, where: Where) -> float:
    """A number >= 0."""
    return as_float(value, where, 0.0)


def one_of(*choices: Any) -> Callable[[Any, Where], Any]:
    """A parser accepting exactly one of `choices`."""
    def parse(value: Any, where: Where) -> Any:
        if value not in choices:
            raise where.error(f"must be one of {', '.join(map(repr, choices))}, got {value!r}{suggest(value, choices)}")
        return value
    return parse


def list_of(item: Callable[[Any, Where], Any], length: int | None = None) -> Callable[[Any, Where], list]:
    """A parser for a list whose items `item` parses (of `length` items when given)."""
    def parse(value: Any, where: Where) -> list:
        if not isinstance(value, (list, tuple)) or (length is not None and len(value) != length):
            raise where.error(f"expected a list{f' of {length} items' if length else ''}, got {value!r}")
        return [item(v, where.key(str(i))) for i, v in enumerate(value)]
    return parse


def any_value(value: Any, where: Where) -> Any:
    """Anything (checked by the component)."""
    return value


# Ranges by key name, for keys checked through a constructor signature (models, losses, optimizers).
POSITIVE_KEYS = {"lr", "initial_lr", "final_lr", "temperature", "feat_dim", "embed_dim", "m_channels", "scale",
                 "kernel_num", "kernel_mul", "audio_dim", "visual_dim", "hidden_dim", "bottleneck", "scale_ratio",
                 "num_mel_bins", "frame_length", "frame_shift", "eps"}
NONNEG_KEYS = {"weight", "weight_decay", "momentum", "dampening", "warm_up_epoch", "margin", "dither", "prob",
               "aug_prob", "aug_noise_std", "aug_perturb_std", "noise_std", "perturb_std"}


def check_finite(value: float, where: Where) -> None:
    """Refuse NaN and infinities (yaml .nan, .inf), which would only surface later as a non-finite loss."""
    if not math.isfinite(value):
        raise where.error(f"must be a finite number, got {value}")


def check_range(name: str, value: Any, where: Where) -> Any:
    """Refuse a non-finite number, then apply the POSITIVE_KEYS / NONNEG_KEYS rule of `name` to it."""
    if isinstance(value, (list, tuple)):  # lists of numbers (e.g. a per-layer list) must be finite too
        for i, item in enumerate(value):
            if isinstance(item, (float, list, tuple)):
                check_range("", item, where.key(str(i)))
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    check_finite(value, where)
    if name in POSITIVE_KEYS and not value > 0:
        raise where.error(f"must be > 0, got {value}")
    if name in NONNEG_KEYS and not value >= 0:
        raise where.error(f"must be >= 0, got {value}")
    return value


# ------------------------------------------------------------------ sections
def field(default: Any = dataclasses.MISSING, parse: Callable[[Any, Where], Any] = any_value,
          factory: Callable[[], Any] | None = None) -> Any:
    """A section field: `parse(value, where)` checks and converts the yaml value; no default = required."""
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={"parse": parse})
    return dataclasses.field(default=default, metadata={"parse": parse})


S = TypeVar("S", bound="Section")


@dataclasses.dataclass(frozen=True)
class Section:
    """Base of the typed config sections (see the module docstring)."""

    # Accepted other names (e.g. WeSpeaker's) -> field name; refused names -> why.
    ALIASES: typing.ClassVar[dict[str, str]] = {}
    REFUSED: typing.ClassVar[dict[str, str]] = {}

    @classmethod
    def from_dict(cls: type[S], data: Any, where: Where) -> S:
        """Parse and validate a mapping; unknown keys, bad values and missing required keys raise ConfigError."""
        data = as_mapping(data, where)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        check_keys(data, list(fields) + list(cls.ALIASES), where, cls.REFUSED)
        values: dict[str, Any] = {}
        for key, value in data.items():
            name = cls.ALIASES.get(key, key)
            if name in values and values[name] != value:
                other = next(k for k in data if k != key and cls.ALIASES.get(k, k) == name)
                raise where.key(key).error(f"says {value!r} but '{where.key(other).path}' says {values[name]!r}; "
                                           "they are the same setting: keep one")
            values[name] = value
        parsed = {}
        for name, f in fields.items():
            if name in values:
                parsed[name] = f.metadata["parse"](values[name], where.key(name))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise where.error(f"missing required key '{where.key(name).path}'")
        obj = cls(**parsed)
        obj.check(where)
        return obj

    def check(self, where: Where) -> None:
        """Cross-field checks of a parsed section (override in subclasses)."""


# ------------------------------------------------------------------ constructor signatures
_SIMPLE = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _accepts(tp: Any, value: Any) -> bool | None:
    """Whether `value` fits annotation `tp` (None when the annotation is not a simple one we check)."""
    if tp is Any:
        return None
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:  # Optional[X] / Union[X, Y] and X | Y alike
        results = [_accepts(a, value) for a in typing.get_args(tp)]
        return True if any(r is True for r in results) else (None if None in results else False)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (list, tuple, Sequence, typing.Sequence) or tp in (list, tuple):
        return isinstance(value, (list, tuple))
    return None


def _init_params(cls_or_fn: Any) -> tuple[dict[str, inspect.Parameter], dict[str, Any]]:
    """Named keyword parameters of a class's __init__ chain (following **kwargs to the bases, as a subclass
    that forwards them does) or of a function, and their type hints where they resolve."""
    params: dict[str, inspect.Parameter] = {}
    hints: dict[str, Any] = {}
    chain = [c for c in cls_or_fn.__mro__ if "__init__" in vars(c)] if inspect.isclass(cls_or_fn) else [cls_or_fn]
    for owner in chain:
        if owner is object or f"{owner.__module__}.{owner.__qualname__}" == "torch.nn.modules.module.Module":
            break  # nn.Module / object take no config keys
        fn = owner.__init__ if inspect.isclass(cls_or_fn) else owner
        sig = inspect.signature(fn)
        try:
            hints.update({k: v for k, v in typing.get_type_hints(fn).items() if k not in hints})
        except Exception:  # unresolvable forward references: fall back to no type check for them
            pass
        open_kwargs = False
        for i, (name, p) in enumerate(sig.parameters.items()):
            if p.kind is p.VAR_KEYWORD:
                open_kwargs = True
            elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and not (i == 0 and name == "self"):
                params.setdefault(name, p)
        if not open_kwargs or not inspect.isclass(cls_or_fn):
            break
    return params, hints


def check_kwargs(target: Any, args: Mapping[str, Any], where: Where, supplied: Sequence[str] = (),
                 what: str = "") -> dict[str, Any]:
    """Check `args` against the keyword parameters of `target` (a class or function): unknown keys refused with a
    suggestion, simple annotated types (int, float, bool, str, Optional, lists) and the name-based ranges checked,
    required parameters present. `supplied` are parameters the caller fills itself (not config keys)."""
    params, hints = _init_params(target)
    known = [n for n in params if n not in supplied]
    check_keys(args, known, where, what=what or getattr(target, "__name__", ""))
    for name, value in args.items():
        key = where.key(name)
        ok = _accepts(hints[name], value) if name in hints else None
        if ok is False:
            expected = _SIMPLE.get(hints[name], str(hints[name]).replace("typing.", ""))
            raise key.error(f"expected {expected}, got {value!r}")
        check_range(name, value, key)
    missing = [n for n in known if params[n].default is inspect.Parameter.empty and n not in args]
    if missing:
        raise where.error(f"missing required key(s) {', '.join(repr(where.key(n).path) for n in missing)}")
    return dict(args)


def yaml_plain(value: Any) -> bool:
    """Whether a default can be written to yaml and read back equal (None, bool, numbers, str, lists, dicts)."""
    if isinstance(value, (list, tuple)):
        return all(yaml_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and yaml_plain(v) for k, v in value.items())
    return value is None or isinstance(value, (bool, int, float, str))


def as_yaml_value(value: Any) -> Any:
    """A plain default as yaml reads it back: tuples become lists."""
    if isinstance(value, (list, tuple)):
        return [as_yaml_value(v) for v in value]
    if isinstance(value, dict):
        return {k: as_yaml_value(v) for k, v in value.items()}
    return value


def with_defaults(target: Callable[..., Any], args: dict[str, Any], supplied: Sequence[str] = (),
                  skip: Sequence[str] = ()) -> dict[str, Any]:
    """`args` (already checked against `target`) with the defaults of target's other keyword parameters filled in,
    in signature order: the constructor's default is the schema's default, recorded in config.yaml. Parameters
    the caller supplies, those in `skip` and defaults yaml cannot hold (a class, a tensor) are left out."""
    params, _ = _init_params(target)
    filled = {}
    for name, param in params.items():
        if name in args:
            filled[name] = args[name]
        elif (name not in supplied and name not in skip and param.default is not inspect.Parameter.empty
              and yaml_plain(param.default)):
            filled[name] = as_yaml_value(param.default)
    filled.update({k: v for k, v in args.items() if k not in filled})
    return filled


def dotted_paths(data: Any, prefix: str = "") -> list[str]:
    """Every dotted key path of a nested mapping ('a', 'a.b', ...)."""
    out: list[str] = []
    if isinstance(data, Mapping):
        for k, v in data.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            out.append(path)
            out.extend(dotted_paths(v, path))
    return out
