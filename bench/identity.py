"""Which code made a result: one record for every output (results headers, accuracy rows, a training run's
``config.json`` and checkpoints, the feature cache's ``index.json``, ``bench env``).

The record (``FIELDS``):

- ``mixbench_version``: the version in our own ``pyproject.toml`` beside the sources, else the installed
  distribution's;
- ``git_commit``: HEAD of the repository the sources live in, only when that repository's top level is
  this project (the directory holding the packages, with a ``pyproject.toml`` naming ``mixbench``).
  Sources exported into another repository, or a virtual environment inside one, record None rather
  than a stranger's commit;
- ``git_dirty``: whether tracked files differ from that commit (None without a commit);
- ``source_sha256``: a hash over the sources themselves, ``SUFFIXES`` files of the ``PACKAGES`` that
  setuptools installs (directories holding ``__init__.py``; ``__pycache__`` and hidden ones skipped),
  in sorted order of their paths relative to the packages' parent, each fed as path, size and bytes
  with CRLF read as LF. A checkout, a ``git archive`` export and a wheel of one commit hash alike, and
  any edit changes it, committed or not.

It imports nothing from the project and nothing beyond the standard library, so ``model`` (which does
not otherwise depend on ``bench``) can use it without pulling in the harness. Computed once per process:
3-7 ms of hashing (118 files) and 11-15 ms of three git calls on a busy 2-core machine.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import subprocess
import tomllib
from functools import cache
from pathlib import Path

PACKAGES = ("bench", "mixers", "model", "plots")
SUFFIXES = (".py", ".toml")
"""Python sources and package data (``bench/budgets.toml``): what a wheel installs."""
FIELDS = ("mixbench_version", "git_commit", "git_dirty", "source_sha256")
PROJECT = "mixbench"


def code_identity() -> dict:
    """The record for the code this process runs (a fresh dict each call: callers may extend it)."""
    return dict(_this_process())


@cache
def _this_process() -> dict:
    dirs = package_dirs()
    return identify(dirs["bench"].parent, dirs)


def carried(previous: dict | None) -> dict:
    """Identity fields for a document this process rewrites (a resumed run's ``config.json``, a resumed cache's
    ``index.json``): this process's record, and in ``earlier_code`` every different record written before."""
    current = code_identity()
    earlier = list((previous or {}).get("earlier_code") or [])
    if previous and previous.get("source_sha256"):
        before = {name: previous.get(name) for name in FIELDS}
        if before != current and before not in earlier:
            earlier.append(before)
    return {**current, "earlier_code": earlier} if earlier else current


def package_dirs() -> dict[str, Path]:
    """Where each package's sources are, found without importing them (``mixers`` imports torch)."""
    dirs = {}
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        locations = list(spec.submodule_search_locations or []) if spec else []
        if not locations:
            raise RuntimeError(f"package {name!r} not found: is mixbench installed?")
        dirs[name] = Path(locations[0]).resolve()
    return dirs


def identify(root: Path, dirs: dict[str, Path] | None = None) -> dict:
    """The record for sources under ``root`` (the directory holding the packages, e.g. a checkout)."""
    root = Path(root).resolve()
    dirs = dirs or {name: root / name for name in PACKAGES}
    commit, dirty = git_state(root)
    return {"mixbench_version": _version(root), "git_commit": commit, "git_dirty": dirty,
            "source_sha256": source_sha256(dirs)}


def source_sha256(dirs: dict[str, Path]) -> str:
    """sha256 over every source file of the packages, in a fixed order, independent of where they lie."""
    digest = hashlib.sha256()
    for relative, path in sorted(_sources(dirs)):
        data = path.read_bytes().replace(b"\r\n", b"\n")
        digest.update(f"{relative}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _sources(dirs: dict[str, Path]):
    """(package-relative POSIX path, file) of each installed source: package directories only, as setuptools."""
    for name in sorted(dirs):
        top = Path(dirs[name])
        for folder, subdirs, files in os.walk(top):
            subdirs[:] = [d for d in subdirs if not d.startswith(".") and (Path(folder) / d / "__init__.py").is_file()]
            for file in files:
                if file.endswith(SUFFIXES) and not file.startswith("."):
                    path = Path(folder) / file
                    yield f"{name}/{path.relative_to(top).as_posix()}", path


def git_state(root: Path) -> tuple[str | None, bool | None]:
    """(HEAD, dirty) when ``root`` is the top level of this project's own repository, else (None, None)."""
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != Path(root).resolve() or not _ours(Path(top)):
        return None, None
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:  # a repository without commits yet
        return None, None
    changes = _git(root, "status", "--porcelain", "--untracked-files=no")
    return commit, None if changes is None else bool(changes)


def _ours(top: Path) -> bool:
    return _project(top).get("name") == PROJECT


def _project(top: Path) -> dict:
    try:
        return tomllib.loads((top / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _version(root: Path) -> str | None:
    project = _project(root)
    if project.get("name") == PROJECT and project.get("version"):
        return project["version"]
    try:
        return importlib.metadata.version(PROJECT)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(root: Path, *args: str) -> str | None:
    """git's output, stripped; None when git is missing, fails or hangs."""
    # Ask about ``root`` itself (not a GIT_DIR inherited from a hook), and take no optional locks: a status
    # taken while another git process works must not fight it for the index.
    environment = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    environment["GIT_OPTIONAL_LOCKS"] = "0"
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                             env=environment)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
