"""The import graph of wespeaker_avkd against the layer order written in docs/design.md.

A module may import its own layer and the layers below it. Imports inside functions count as much as those at
module level: moving an upward import into a function hides it from a reader, not from the dependency.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "wespeaker_avkd"
DESIGN = REPO / "docs" / "design.md"
COMPILED = {"_scorer"}  # extension modules: no .py source, placed in the doc like any package

# Known upward imports that other work items remove. Each entry: (importing module, imported module, issue).
# The test passes while an entry is present AND the edge still exists; once an edge is gone its entry must be
# deleted (the test says so), so this list can only shrink.
ALLOWED_VIOLATIONS: list[tuple[str, str, str]] = [
]

# Tests that still swap a module in sys.modules (the seam they need is a collaborator passed in, not a module
# replaced). Each entry: (test file, issue). The list can only shrink, like ALLOWED_VIOLATIONS.
ALLOWED_MODULE_SWAPS: list[tuple[str, str]] = [
]
# Writes into sys.modules: setitem(sys.modules, ...), sys.modules[...] = ..., .update(...), .setdefault(...).
MODULE_SWAP = re.compile(r"setitem\(\s*sys\.modules\b|sys\.modules\[[^\]]*\]\s*=(?!=)"
                         r"|sys\.modules\.(?:update|setdefault)\(")


def read_layers(text: str) -> dict[str, int]:
    """The ```layers block of docs/design.md -> {top-level package name: rank}; higher rank = higher layer."""
    match = re.search(r"^```layers\n(.*?)^```", text, flags=re.M | re.S)
    assert match, f"{DESIGN}: no ```layers block"
    ranks: dict[str, int] = {}
    for line_no, line in enumerate(match.group(1).splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        rank, _, names = line.partition(":")
        assert rank.strip().isdigit() and names.split(), f"layers block line {line_no}: expected 'N: pkg pkg'"
        for name in names.split():
            assert name not in ranks, f"layers block: {name} placed twice"
            ranks[name] = int(rank)
    return ranks


def package_modules() -> dict[str, Path]:
    """Dotted module name -> source file for every .py file of the package."""
    mods = {}
    for path in sorted((REPO / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def imported_modules(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported package module, line) for every import statement anywhere in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                # `from pkg import sub` imports the submodule when there is one, else a name of pkg itself.
                sub = f"{base}.{alias.name}"
                yield (sub if sub in known else base), node.lineno


def layer_of(module: str, ranks: dict[str, int]) -> tuple[str, int]:
    """(layer name, rank) of a package module: its first component below the package, `__init__` for the root."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else "__init__"
    assert name in ranks, (f"{module}: package {name!r} has no layer in docs/design.md's ```layers block; "
                           f"place it there")
    return name, ranks[name]


class Edge(NamedTuple):
    """One import statement inside the package, with the layers of both ends."""

    src: str
    dst: str
    line: int
    src_layer: tuple[str, int]
    dst_layer: tuple[str, int]


def import_edges() -> list[Edge]:
    """Every import of a package module by a package module."""
    ranks = read_layers(DESIGN.read_text(encoding="utf-8"))
    mods = package_modules()
    known = set(mods) | {f"{PACKAGE}.{name}" for name in COMPILED}
    edges = []
    for module, path in mods.items():
        src_name, src_rank = layer_of(module, ranks)
        for target, line in imported_modules(module, path, known):
            if target != PACKAGE and not target.startswith(PACKAGE + "."):
                continue
            edges.append(Edge(module, target, line, (src_name, src_rank), layer_of(target, ranks)))
    return edges


def upward_edges() -> list[Edge]:
    """The edges whose imported layer ranks above the importer's."""
    return [e for e in import_edges() if e.dst_layer[1] > e.src_layer[1]]


def test_every_package_and_compiled_module_has_a_layer():
    ranks = read_layers(DESIGN.read_text(encoding="utf-8"))
    top = {p.name for p in (REPO / PACKAGE).iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    top |= {p.stem for p in (REPO / PACKAGE).glob("*.py") if p.stem != "__init__"}
    missing = sorted((top | COMPILED | {"__init__"}) - set(ranks))
    assert not missing, f"not placed in docs/design.md's ```layers block: {missing}"
    assert ranks["bin"] == max(ranks.values()) and ranks["_scorer"] == min(ranks.values())


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    allowed = {(a, b) for a, b, _ in ALLOWED_VIOLATIONS}
    bad = [e for e in upward_edges() if (e.src, e.dst) not in allowed]
    assert not bad, "upward imports (see the layer table in docs/design.md):\n" + "\n".join(
        f"  {e.src} (layer {e.src_layer[1]}) line {e.line} imports {e.dst} (layer {e.dst_layer[1]})" for e in bad)


def test_packages_of_one_layer_are_independent():
    """Packages placed in one layer import none of each other: any order between packages is stated in the block
    (a dependency gets its own, lower layer), so the block is the real order, inside a layer too."""
    bad = sorted({(e.src_layer[0], e.dst_layer[0]) for e in import_edges()
                  if e.src_layer[1] == e.dst_layer[1] and e.src_layer[0] != e.dst_layer[0]})
    assert not bad, f"packages of one layer importing each other (give the imported one a lower layer): {bad}"


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted: the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycle_between_modules():
    edges: dict[str, set[str]] = {}
    for e in import_edges():
        if e.src != e.dst:
            edges.setdefault(e.src, set()).add(e.dst)
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert not import_cycles({"a": {"b"}, "b": set()})
    cycles = import_cycles(edges)
    assert not cycles, f"modules importing each other (move what both need below them): {cycles}"


def test_allowed_exceptions_still_exist():
    present = {(e.src, e.dst) for e in upward_edges()}
    gone = [(a, b, issue) for a, b, issue in ALLOWED_VIOLATIONS if (a, b) not in present]
    assert not gone, f"fixed upward imports: delete them from ALLOWED_VIOLATIONS in {__file__}: {gone}"


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from wespeaker_avkd import scoring\n    from ..scoring import metrics\n")
    known = {"wespeaker_avkd.scoring", "wespeaker_avkd.scoring.metrics"}
    found = list(imported_modules("wespeaker_avkd.data.m", src, known))
    assert found == [("wespeaker_avkd.scoring", 2), ("wespeaker_avkd.scoring.metrics", 3)]
    ranks = read_layers("```layers\n2: scoring\n1: data\n```\n")
    assert layer_of("wespeaker_avkd.data.m", ranks) == ("data", 1)


def test_the_cpp_core_knows_no_python():
    """Below every Python layer: only csrc/bindings.cpp may include pybind11 or the Python C API."""
    offenders = []
    for path in sorted((REPO / "csrc").glob("*.[ch]*")):
        if path.name == "bindings.cpp":
            continue
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.match(r"\s*#\s*include\s*[<\"](pybind11/|Python\.h)", line):
                offenders.append(f"csrc/{path.name}:{line_no}: {line.strip()}")
    assert not offenders, "Python in the C++ core (keep it in csrc/bindings.cpp):\n" + "\n".join(offenders)


def module_swaps() -> dict[str, list[int]]:
    """Test file (relative path) -> lines that write into sys.modules."""
    found: dict[str, list[int]] = {}
    for path in sorted((REPO / "tests").rglob("*.py")):
        if path.name == Path(__file__).name:
            continue
        lines = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if MODULE_SWAP.search(line)]
        if lines:
            found[path.relative_to(REPO).as_posix()] = lines
    return found


def test_no_test_swaps_modules_in_sys_modules():
    assert MODULE_SWAP.search('monkeypatch.setitem(sys.modules, "x", m)') and MODULE_SWAP.search(
        'sys.modules["x"] = m') and not MODULE_SWAP.search('assert m is sys.modules["x"]')
    found = module_swaps()
    allowed = {name for name, _ in ALLOWED_MODULE_SWAPS}
    bad = {name: lines for name, lines in found.items() if name not in allowed}
    assert not bad, f"tests that patch sys.modules (pass the collaborator in instead): {bad}"
    gone = [entry for entry in ALLOWED_MODULE_SWAPS if entry[0] not in found]
    assert not gone, f"no longer swap modules: delete them from ALLOWED_MODULE_SWAPS in {__file__}: {gone}"
