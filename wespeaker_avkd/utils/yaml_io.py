"""Bounded yaml reading: the one loader of every yaml file the package, the recipe and the tools read.

`safe_load` semantics (plain data only, no Python objects), plus two bounds checked before anything is built:
a file larger than `max_bytes` is refused unread, and a document whose aliases would expand to more than
MAX_NODES nodes (the "billion laughs" file: a kilobyte of nested `&a [*b, *b, ...]` that doubles per level)
is refused from its node graph, which the parser builds with each anchored node once. Errors are YamlError,
one line naming the file.
"""
from __future__ import annotations

import os
from typing import Any

import yaml

from wespeaker_avkd.utils.errors import NamedError

MAX_BYTES = 1 << 20  # 1 MiB: configs, weight tables and saved configs are a few KB
MAX_NODES = 1_000_000  # nodes after alias expansion; without aliases a 1 MiB file has fewer than this
MAX_DEPTH = 200  # nesting levels (the parser recurses once per level)


class YamlError(NamedError, yaml.YAMLError):
    """A yaml file that is not valid, too large or expands too far; the message names the file."""


def _expanded_nodes(root: yaml.Node, where: str) -> int:
    """Nodes of `root` with every alias expanded, counted on the shared graph (each node once, memoised), so the
    count of an exponential document is found in linear time; YamlError once it passes MAX_NODES."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
        if children_done:
            total = 1 + sum(sizes[id(c)] for c in children)
            if total > MAX_NODES:
                raise YamlError(f"{where}: its aliases expand to more than {MAX_NODES} nodes (nested '*alias' "
                                "references); refused before building it")
            sizes[id(node)] = total
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that checks the composed document's depth and alias expansion before constructing it."""

    where = "<yaml>"

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlError(f"{self.where}: nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            _expanded_nodes(node, self.where)
        return node


def loads(text: str, where: str) -> Any:
    """The data of yaml `text` (safe_load semantics, bounded as the module says); `where` names it in errors."""
    loader = _BoundedLoader(text)
    loader.where = loader.name = where  # `name` is what the parser's error marks print
    try:
        return loader.get_single_data()
    except YamlError:
        raise
    except yaml.YAMLError as err:
        detail = " ".join(str(err).split())
        raise YamlError(f"{where}: not valid yaml: {detail}") from err
    finally:
        loader.dispose()


def load_yaml(path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> Any:
    """The data of the yaml file `path` (None for an empty file); a file over `max_bytes`, not UTF-8, not
    valid yaml or expanding too far raises YamlError naming it; a missing file raises FileNotFoundError."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise YamlError(f"{path}: {size} bytes, more than the {max_bytes} a yaml file read here may hold")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:  # not a regular file, or it grew: the bound holds on what is read
        raise YamlError(f"{path}: more than the {max_bytes} bytes a yaml file read here may hold")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise YamlError(f"{path}: not UTF-8 text ({err})") from None
    return loads(text, path)
