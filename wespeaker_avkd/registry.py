"""Name -> class registries, filled by decorators where each class is defined.

A yaml config names a model, fusion teacher, projection head or loss by a string; the registry turns the
string into an instance. A third-party package registers its own class with the same decorator and makes it
reachable from yaml by listing its module under the config's `plugins:` key (see `import_plugins`).

    @MODELS.register("ResNet34")
    class ResNet34(nn.Module): ...

    model = MODELS.build("ResNet34", feat_dim=40, embed_dim=512)
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, Iterable, List, Optional, Type, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """An unknown or duplicate name in a registry; the message lists what is known."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class Registry:
    """A name -> class table of one kind of component (model, fusion, projection, loss)."""

    def __init__(self, kind: str, builtin_modules: Iterable[str] = ()) -> None:
        """`kind` names the table in messages; `builtin_modules` are imported on first lookup."""
        self.kind = kind
        self._classes: Dict[str, type] = {}
        self._builtin_modules = tuple(builtin_modules)
        self._builtins_loaded = False

    def register(self, name: Optional[str] = None) -> Callable[[Type[T]], Type[T]]:
        """Decorator registering a class under `name` (default: the class name)."""

        def decorator(cls: Type[T]) -> Type[T]:
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

    def get(self, name: str) -> type:
        """The class registered under `name`; unknown names raise RegistryError listing the known ones."""
        self._load_builtins()
        try:
            return self._classes[name]
        except KeyError:
            raise RegistryError(
                f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(self.names()) or '(none)'}. "
                f"A class from another package must be registered with @{self.kind.upper()}S.register and its "
                f"module listed under 'plugins:' in the config") from None

    def build(self, name: str, **kwargs: Any) -> Any:
        """Instantiate the class registered under `name` with `kwargs`."""
        cls = self.get(name)
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise TypeError(f"building {self.kind} {name!r} with arguments {sorted(kwargs)}: {err}") from err

    def names(self) -> List[str]:
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
