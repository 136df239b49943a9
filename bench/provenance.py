"""Which code made the rows of a results file, in words, for ``bench report``, ``bench plot`` and ``bench compare``.

A row's code is its own record (accuracy rows carry ``bench.identity.FIELDS``) or, for cell rows, that of the
header above it: every sweep session writes a header, so a sweep resumed after an edit holds rows under two
different records. Files written before the record existed have ``git_commit`` at most, and it may be another
repository's; they are named as such. Headers of sessions that wrote no rows do not count as mixing.
"""

from __future__ import annotations

from pathlib import Path

import typer

from bench.identity import FIELDS
from bench.results import read_lines

ROW_KINDS = ("cell", "accuracy")
ENVIRONMENT = ("host", "device_name", "cpu_threads", "python", "torch", "cuda", "fla", "fla_core", "triton",
               "numpy", "triton_interpret")
"""Header fields besides the code that change what a measurement means; ``compare`` lists those that differ."""


def identity_of(record: dict) -> tuple:
    """The code record of a header or row as a hashable tuple in ``FIELDS`` order (None where missing)."""
    return tuple(record.get(name) for name in FIELDS)


def code_counts(path: Path) -> dict[tuple, int]:
    """Each code record of ``path`` (first seen first) and how many rows it made (0: a header without rows)."""
    counts: dict[tuple, int] = {}
    current = None
    for obj in read_lines(Path(path)):
        kind = obj.get("kind")
        if kind == "header":
            current = identity_of(obj)
            counts.setdefault(current, 0)
        elif kind in ROW_KINDS:
            mine = identity_of(obj) if obj.get("source_sha256") else current
            if mine is not None:
                counts[mine] = counts.get(mine, 0) + 1
    return counts


def describe(identity: tuple) -> str:
    """``code mixbench 0.1.0, source 1a2b3c4d5e6f, commit 39665d82c4d4 + uncommitted changes`` and the like."""
    version, commit, dirty, source = identity
    if not source:
        return ("code not recorded (an older file" + (f"; git_commit {commit[:12]}, possibly another "
                                                      "repository's" if commit else "") + ")")
    where = (f"commit {commit[:12]}" + (" + uncommitted changes" if dirty else "")) if commit \
        else "no git commit (not run from a mixbench checkout)"
    return f"code mixbench {version}, source {source[:12]}, {where}"


def code_identity_lines(paths: list[Path]) -> list[tuple[str, bool]]:
    """(line, is_warning) per file: its code, or a warning when its rows come from different code."""
    lines = []
    for path in paths:
        counts = code_counts(path)
        made = {identity: n for identity, n in counts.items() if n}
        if len(made) > 1:
            parts = "; ".join(f"{n} row{'s' * (n != 1)} by {describe(identity)}" for identity, n in made.items())
            lines.append((f"{path}: MIXED CODE, rows from {len(made)} different code versions (a run resumed "
                          f"after an edit?): {parts}", True))
        elif made or counts:
            lines.append((f"{path}: {describe(next(iter(made or counts)))}", False))
        else:
            lines.append((f"{path}: no header and no rows name their code", True))
    return lines


def compare_lines(base: list[Path], new: list[Path]) -> list[tuple[str, bool]]:
    """What besides the code differs between BASE and NEW (each one or more files of one run); a warning when
    only the code does."""
    codes = [list(dict.fromkeys(identity for path in paths for identity in _made(path))) for paths in (base, new)]
    unknown = [name for name, code in zip(("BASE", "NEW"), codes)
               if not code or not all(identity[-1] for identity in code)]
    if unknown:
        return [(f"note: cannot tell whether BASE and NEW ran the same code: {' and '.join(unknown)} "
                 f"{'predates' if len(unknown) == 1 else 'predate'} the code record", False)]
    if codes[0] == codes[1]:
        return [("note: BASE and NEW ran the same code: " + "; ".join(map(describe, codes[0])), False)]
    headers = [_first_header(paths[0]) for paths in (base, new)]
    changed = [name for name in ENVIRONMENT if headers[0].get(name) != headers[1].get(name)]
    code = (f"BASE {' + '.join(map(describe, codes[0]))}; NEW {' + '.join(map(describe, codes[1]))}")
    if changed:
        return [(f"note: BASE and NEW differ in code and in {', '.join(changed)}: {code}", False)]
    return [(f"warning: BASE and NEW differ only in code (same machine and versions); the ratios measure "
             f"the code change: {code}", True)]


def say(lines: list[tuple[str, bool]]) -> None:
    """Lines on stderr, warnings in yellow, so a report's CSV or JSON on stdout stays clean."""
    for line, warning in lines:
        typer.secho(line, fg="yellow" if warning else None, err=True)


def _made(path: Path) -> list[tuple]:
    counts = code_counts(path)
    return [identity for identity, n in counts.items() if n] or list(counts)


def _first_header(path: Path) -> dict:
    return next((obj for obj in read_lines(Path(path)) if obj.get("kind") == "header"), {})
