"""Name -> class registries, filled by decorators where each class is defined.

A yaml config names a model, fusion teacher, projection head or loss by a string; the registry turns the
string into an instance. A third-party package registers its own class with the same decorator and makes it
reachable either by listing its module under the config's `plugins:` key (see `import_plugins`), or, once
installed, by declaring that module in the entry-point group `wespeaker_avkd.plugins` of its package metadata
(see `load_entry_point_plugins`; every such module is imported at the first registry lookup).

A training config the user passes to bin.train is the user's own: its plugins are imported (`import_plugins`).
A saved model's config (an exp dir's config.yaml, read by bin.embed, bin.export, bin.extract) is someone's
file: its plugins are imported only when the user trusts them (`--trust_plugins`, `trust_saved_plugins`), when
an installed package declares them as entry points, or when they are imported already; otherwise loading the
model stops with a PluginError naming them (`import_saved_plugins`):

    # pyproject.toml of the third-party package
    [project.entry-points."wespeaker_avkd.plugins"]
    my_models = "my_package.kd_models"

    @MODELS.register("ResNet34")
    class ResNet34(nn.Module): ...

    model = MODELS.build("ResNet34", feat_dim=40, embed_dim=512)
"""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from wespeaker_avkd.utils.errors import NamedError

T = TypeVar("T")

ENTRY_POINT_GROUP = "wespeaker_avkd.plugins"
TRUST_PLUGINS_ENV = "WESPEAKER_AVKD_TRUST_PLUGINS"  # =1: as --trust_plugins, for every process it reaches
TRUST_PLUGINS_FLAG = "--trust_plugins"


class RegistryError(NamedError, KeyError):
    """An unknown or duplicate name in a registry; the message lists what is known."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class Registry:
    """A name -> class table of one kind of component (model, fusion, projection, loss)."""

    def __init__(self, kind: str, builtin_modules: Iterable[str] = ()) -> None:
        """`kind` names the table in messages; `builtin_modules` are imported on first lookup."""
        self.kind = kind
        self._classes: dict[str, type] = {}
        self._builtin_modules = tuple(builtin_modules)
        self._builtins_loaded = False

    def register(self, name: str | None = None) -> Callable[[type[T]], type[T]]:
        """Decorator registering a class under `name` (default: the class name)."""

        def decorator(cls: type[T]) -> type[T]:
            key = name or cls.__name__
            known = self._classes.get(key)
            if known is not None and known is not cls:
                raise RegistryError(
                    f"{self.kind} name {key!r} is already registered by {known.__module__}.{known.__qualname__}; "
                    f"pick another name for {cls.__module__}.{cls.__qualname__}")
            self._classes[key] = cls
            return cls

        return decorator

    def _load_builtins(self) -> None:
        """Import the package's own modules so their decorators have run."""
        if not self._builtins_loaded:
            self._builtins_loaded = True
            for module in self._builtin_modules:
                importlib.import_module(module)
            # After the built-ins, so a plugin reusing a built-in name gets the duplicate-name error.
            load_entry_point_plugins()

    def get(self, name: str) -> type:
        """The class registered under `name`; unknown names raise RegistryError listing the known ones."""
        self._load_builtins()
        try:
            return self._classes[name]
        except KeyError:
            raise RegistryError(
                f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(self.names()) or '(none)'}. "
                f"A class from another package must be registered with @{self.kind.upper()}S.register and its "
                f"module listed under 'plugins:' in the config or in the entry-point group {ENTRY_POINT_GROUP!r} "
                f"of an installed package") from None

    def build(self, name: str, **kwargs: Any) -> Any:
        """Instantiate the class registered under `name` with `kwargs`."""
        cls = self.get(name)
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise TypeError(f"building {self.kind} {name!r} with arguments {sorted(kwargs)}: {err}") from err

    def names(self) -> list[str]:
        """Sorted registered names."""
        self._load_builtins()
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._classes

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


MODELS = Registry("model", ["wespeaker_avkd.models"])
FUSIONS = Registry("fusion", ["wespeaker_avkd.models"])
PROJECTIONS = Registry("projection", ["wespeaker_avkd.models"])
LOSSES = Registry("loss", ["wespeaker_avkd.losses"])


def import_plugins(modules: Iterable[str]) -> None:
    """Import third-party modules (a config's `plugins:` list) so their registrations take effect."""
    for module in modules or ():
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ImportError(f"config key 'plugins': cannot import plugin module {module!r}: {err}") from err


class PluginError(NamedError, ImportError):
    """A plugin entry point that cannot be loaded; the message names the entry point and its distribution."""


# Entry points already imported (distribution, name, value): each is imported once per process.
_loaded_entry_points: set[tuple] = set()


def _entry_point_id(ep: importlib.metadata.EntryPoint) -> tuple:
    """(distribution name, entry point name, value): what identifies an entry point in messages and the cache."""
    dist = getattr(ep, "dist", None)
    return (getattr(dist, "name", None) or "unknown distribution", ep.name, ep.value)


def load_entry_point_plugins(group: str = ENTRY_POINT_GROUP) -> list[str]:
    """Import every module declared in the entry-point group `group` of the installed distributions (once
    each); returns the names newly loaded. A failing one raises PluginError naming the entry point."""
    loaded = []
    for ep in importlib.metadata.entry_points(group=group):
        ident = _entry_point_id(ep)
        if ident in _loaded_entry_points:
            continue
        _loaded_entry_points.add(ident)  # before loading: a plugin that looks a name up must not recurse here
        try:
            ep.load()
        except Exception as err:  # anything a third-party import raises; reported with its entry point
            _loaded_entry_points.discard(ident)
            raise PluginError(f"entry point {ep.name!r} = {ep.value!r} of distribution {ident[0]!r} (group "
                              f"{group!r}) failed to load: {type(err).__name__}: {err}") from err
        loaded.append(ep.name)
    return loaded


_trusted = False  # set by trust_saved_plugins (the entry points' --trust_plugins)


def trust_saved_plugins(trust: bool = True) -> None:
    """Let saved model configs import the plugin modules they name (bin.embed/export/extract --trust_plugins)."""
    global _trusted
    _trusted = bool(trust)


def add_trust_plugins_option(parser: Any) -> None:
    """Add --trust_plugins to an argparse parser of an entry point that loads saved models."""
    parser.add_argument(TRUST_PLUGINS_FLAG, action="store_true",
                        help="import the plugin modules a saved model's config lists under 'plugins:' (runs their "
                             "code: only for models you trust; installed entry-point plugins need no flag)")


def entry_point_modules(group: str = ENTRY_POINT_GROUP) -> set[str]:
    """The modules installed distributions declare in the entry-point group `group` (imported at any lookup)."""
    return {ep.value.split(":", 1)[0].strip() for ep in importlib.metadata.entry_points(group=group)}


def import_saved_plugins(modules: Iterable[str], source: str) -> None:
    """Import the plugin modules a saved model's config `source` names, when allowed: trusted by the user
    (trust_saved_plugins, or WESPEAKER_AVKD_TRUST_PLUGINS=1), declared by an installed entry point, or imported
    already (importing them again runs nothing). Otherwise raise PluginError naming them and how to allow them:
    loading a model dir never runs code that came with it."""
    modules = list(modules or ())
    if not modules:
        return
    if not (_trusted or os.environ.get(TRUST_PLUGINS_ENV) == "1"):
        allowed = entry_point_modules()
        unknown = [m for m in modules if m not in sys.modules and m not in allowed]
        if unknown:
            names = ", ".join(repr(m) for m in unknown)
            raise PluginError(f"{source}: the saved config names plugin module(s) {names} under 'plugins:', which "
                              "loading a model does not import (it would run code that came with the model); if "
                              f"you trust them, pass {TRUST_PLUGINS_FLAG} (or set {TRUST_PLUGINS_ENV}=1), or install "
                              f"them as entry points of the group {ENTRY_POINT_GROUP!r}")
    import_plugins(modules)
