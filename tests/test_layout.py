"""The project's layout rules, checked on the source (issue 13): no import circle, no file over 300 lines,
and ``mixers/`` showing its two layers (mechanisms at the top, their shared chunked cores in ``mixers/cores``).

The import graph is read with ``ast`` from every ``.py`` file of ``bench``, ``mixers``, ``model`` and ``plots``
without importing anything. Every import statement counts, at module level or inside a function (a deferred
import still ties the two modules together; deferring it only hides the circle until a call). An import names
the module it loads: ``from a.b import c`` is ``a.b.c`` when that is a module of ours, else ``a.b``; the
packages above it (whose ``__init__`` runs first) are not edges, so a package may list its own modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "mixers", "model", "plots")
MAX_LINES = 300
CORE_SUFFIXES = ("_chunk", "_scan", "_stable", "_attention")


def _modules() -> dict[str, Path]:
    """Dotted module name -> source file, for every Python file of the four packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _targets(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Our modules that ``name`` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: up level - 1 packages from this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            candidates = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in modules:  # `import a.b.c` of a function-free path: its module
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _targets(name, path, modules) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each strongly connected group of two or more modules (Tarjan's algorithm)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(_circle(sorted(group), graph))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def _circle(group: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A path from the group's first module back to itself, inside the group (breadth first)."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node] & members):
                if nxt == start:
                    return paths[node] + [start]
                if nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return group


def test_the_import_graph_has_no_circle():
    found = circles(import_graph())
    assert not found, "import circles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_circle_finder_finds_circles():
    """The check above can fail: a three-module circle and a two-module one are found, a chain is not."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d", "a"}, "f": {"a"}}
    assert sorted(circles(graph)) == [["a", "b", "c", "a"], ["d", "e", "d"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_module_and_function_level_imports():
    graph = import_graph()
    assert "mixers.cost" in graph["mixers"]  # module level
    assert "model.pretrained" in graph["model.features"]  # inside a function


@pytest.mark.parametrize("package", PACKAGES)
def test_no_python_file_is_over_300_lines(package):
    long = {str(p.relative_to(ROOT)): n for p in sorted((ROOT / package).rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines: {long}"


def test_mixers_shows_mechanisms_above_their_cores():
    """At ``mixers/``'s top, mechanisms (and registry, cost, wrapper); the chunked cores in ``mixers/cores``."""
    assert (ROOT / "mixers" / "cores" / "__init__.py").is_file()
    cores_named = [p.name for p in (ROOT / "mixers").glob("*.py") if p.stem.endswith(CORE_SUFFIXES)]
    assert not cores_named, f"chunked cores at mixers/'s top level: {cores_named}; they belong in mixers/cores/"
