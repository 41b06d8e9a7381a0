"""Name -> class registries, filled by decorators where each class is defined.

A yaml config names a model, fusion teacher, projection head or loss by a string; the registry turns the
string into an instance. A third-party package registers its own class with the same decorator and makes it
reachable either by listing its module under the config's `plugins:` key (see `import_plugins`), or, once
installed, by declaring that module in the entry-point group `wespeaker_avkd.plugins` of its package metadata
(see `load_entry_point_plugins`; every such module is imported at the first registry lookup):

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
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from wespeaker_avkd.utils.errors import NamedError

T = TypeVar("T")

ENTRY_POINT_GROUP = "wespeaker_avkd.plugins"


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
