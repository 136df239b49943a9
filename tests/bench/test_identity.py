"""The code identity (``bench.identity``): a ``git archive`` export inside another repository hashes like its
checkout and records no commit; an uncommitted edit makes the checkout dirty and changes the hash; a sweep's
header carries this process's record."""

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import bench.identity
from bench.cli import app
from bench.identity import FIELDS, PACKAGES, carried, code_identity, identify, source_sha256
from bench.sysinfo import environment

ROOT = Path(__file__).resolve().parents[2]
GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="git is not installed")


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def _repository(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q")
    return path


def _checkout(tmp_path: Path) -> Path:
    """A committed copy of this project's sources: the four packages and pyproject.toml."""
    root = _repository(tmp_path / "checkout")
    for name in PACKAGES:
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "sources")
    return root


def _identity_in_process_of(root: Path) -> dict:
    """``code_identity()`` as a fresh interpreter importing the sources under ``root`` computes it."""
    script = "import json; from bench.identity import code_identity; print(json.dumps(code_identity()))"
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("GIT_DIR", None)
    done = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


@needs_git
def test_git_archive_inside_another_repository_has_no_commit_and_the_same_source_hash(tmp_path):
    checkout = _checkout(tmp_path)
    head = _git(checkout, "rev-parse", "HEAD").strip()
    # Another project's repository, with its own commit, holding the exported sources in a subfolder.
    other = _repository(tmp_path / "other")
    (other / "README").write_text("someone else's project\n")
    _git(other, "add", "-A")
    _git(other, "commit", "-qm", "theirs")
    export = other / "vendor" / "mixbench"
    export.mkdir(parents=True)
    archive = tmp_path / "export.tar"
    _git(checkout, "archive", "--format=tar", "-o", str(archive), "HEAD")
    with tarfile.open(archive) as tar:
        tar.extractall(export, filter="data")

    at_checkout, at_export = _identity_in_process_of(checkout), _identity_in_process_of(export)
    assert at_checkout["git_commit"] == head and at_checkout["git_dirty"] is False
    assert at_export["git_commit"] is None and at_export["git_dirty"] is None  # not the other repository's commit
    assert at_export["source_sha256"] == at_checkout["source_sha256"]
    assert at_export["mixbench_version"] == at_checkout["mixbench_version"] is not None


@needs_git
def test_an_uncommitted_one_line_edit_of_a_mixer_is_dirty_and_changes_the_hash(tmp_path):
    checkout = _checkout(tmp_path)
    clean = identify(checkout)
    mixer = checkout / "mixers" / "softmax.py"
    mixer.write_text(mixer.read_text().replace('"""', '"""Edited. ', 1))
    edited = identify(checkout)
    assert (clean["git_dirty"], edited["git_dirty"]) == (False, True)
    assert edited["git_commit"] == clean["git_commit"]
    assert edited["source_sha256"] != clean["source_sha256"]
    _git(checkout, "commit", "-qam", "edit")  # committed: clean again, the edited sources' hash
    committed = identify(checkout)
    assert committed["git_dirty"] is False and committed["source_sha256"] == edited["source_sha256"]


@needs_git
def test_a_repository_whose_top_level_is_not_mixbench_records_no_commit(tmp_path):
    """E.g. a virtual environment inside someone's repository: their pyproject names another project."""
    checkout = _checkout(tmp_path)
    project = checkout / "pyproject.toml"
    project.write_text(project.read_text().replace('name = "mixbench"', 'name = "theirs"', 1))
    _git(checkout, "commit", "-qam", "rename")
    assert (identify(checkout)["git_commit"], identify(checkout)["git_dirty"]) == (None, None)


def test_hash_covers_package_sources_only_and_reads_crlf_as_lf(tmp_path):
    dirs = {}
    for name in PACKAGES:
        dirs[name] = tmp_path / name
        dirs[name].mkdir()
        (dirs[name] / "__init__.py").write_text(f'"""{name}"""\nVALUE = 1\n')
    (dirs["bench"] / "budgets.toml").write_text("[a]\nb = 1\n")
    before = source_sha256(dirs)
    (dirs["bench"] / "__pycache__").mkdir()
    (dirs["bench"] / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"\0compiled")
    (dirs["model"] / "notes").mkdir()  # not a package: setuptools would not install it
    (dirs["model"] / "notes" / "scratch.py").write_text("x = 1\n")
    (dirs["mixers"] / "README.md").write_text("not a source\n")
    (dirs["plots"] / "__init__.py").write_bytes(b'"""plots"""\r\nVALUE = 1\r\n')
    assert source_sha256(dirs) == before
    (dirs["bench"] / "budgets.toml").write_text("[a]\nb = 2\n")  # package data counts
    assert source_sha256(dirs) != before
    (dirs["bench"] / "budgets.toml").write_text("[a]\nb = 1\n")
    (dirs["mixers"] / "new.py").write_text("")  # a new, even empty, module counts
    assert source_sha256(dirs) != before


def test_a_rewritten_document_keeps_the_records_of_earlier_code():
    now = code_identity()
    assert carried(None) == now and carried({**now, "train": {}}) == now
    older = {"mixbench_version": "0.0.9", "git_commit": "a" * 40, "git_dirty": True, "source_sha256": "b" * 64}
    assert carried({**older, "train": {}}) == {**now, "earlier_code": [older]}
    # Resumed twice by other code: each earlier record once, oldest first.
    assert carried({**now, "earlier_code": [older]}) == {**now, "earlier_code": [older]}
    assert carried({"train": {}}) == now  # a document from before the record


def test_the_record_is_computed_once_and_headers_carry_it():
    first = code_identity()
    assert tuple(first) == FIELDS and len(first["source_sha256"]) == 64
    first["git_commit"] = "changed by a caller"
    hits = bench.identity._this_process.cache_info().hits
    again = code_identity()
    assert bench.identity._this_process.cache_info().hits == hits + 1  # cached: no git, no hashing again
    assert again["git_commit"] != "changed by a caller"
    assert {name: environment("cpu")[name] for name in FIELDS} == again
    assert again["source_sha256"] == source_sha256({name: ROOT / name for name in PACKAGES})


@needs_git
def test_the_sweep_after_an_uncommitted_edit_records_it_in_its_header(tmp_path, monkeypatch):
    """The header reads the record when the sweep starts: here the record of an edited checkout."""
    checkout = _checkout(tmp_path)
    clean = identify(checkout)
    mixer = checkout / "mixers" / "retnet.py"
    mixer.write_text(mixer.read_text() + "# one more line\n")
    monkeypatch.setattr(bench.identity, "_this_process", lambda: identify(checkout))
    out = tmp_path / "r.jsonl"
    result = CliRunner().invoke(app, ["sweep", "--mixers", "sa:sdpa", "--seconds", "1", "--out", str(out),
                                      "--no-isolate", "--hidden", "32", "--heads", "2", "--reps", "2",
                                      "--budget", "0"])
    assert result.exit_code == 0, result.output
    header = json.loads(out.read_text().splitlines()[0])
    assert header["git_dirty"] is True and header["git_commit"] == clean["git_commit"]
    assert header["source_sha256"] != clean["source_sha256"]
    assert {name: header[name] for name in FIELDS} == identify(checkout)
