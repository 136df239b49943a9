"""Every third-party package ``model`` and ``plots`` import is declared in pyproject.toml, not merely pulled
in by another dependency (transformers came with fla, scipy with scikit-learn)."""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL = {"bench", "mixers", "model", "plots", "tests"}


def _name(distribution: str) -> str:
    return distribution.lower().replace("_", "-")


def _imports(path: Path) -> set[str]:
    tops = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            tops |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops - LOCAL - set(sys.stdlib_module_names)


@pytest.mark.parametrize("package", ["model", "plots"])
def test_imports_are_declared(package):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in project["dependencies"]}
    owners = packages_distributions()
    undeclared = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        for top in _imports(path):
            if not {_name(d) for d in owners.get(top, [top])} & declared:
                undeclared.setdefault(top, path.relative_to(ROOT).as_posix())
    assert undeclared == {}
