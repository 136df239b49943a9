"""Which results files form one run: the files of one device whose cells do not overlap.

A sweep cut by a time limit and finished by a second command, or split across a job array with
``bench sweep --shard K/N``, leaves its cells in several files. Figures, reports and ``bench compare``
must read those files as one run, or a mixer in one file never meets SA in another (no crossover,
no shared line style).

One device, from each file's first header:
- ``device`` (cpu, cuda) and ``device_name`` (``NVIDIA H200``, ``Intel(R) Xeon(R) Processor (2 cores)``);
- on a CPU also ``cpu_threads``: the same processor with 1 or 16 threads gives other timings, while
  a GPU's kernels do not depend on the host's thread count.
The host name does not take part. The shards of a cluster job array run on different nodes of one
GPU model and must merge; and a host name says nothing about the hardware (both machines that made
the committed runs call themselves ``vm``).

Files of one device that measured the same cell are kept apart, as separate runs: two sweeps of one
grid (before and after a change) are a comparison, not one run. Files are taken in the order given;
each joins the first run of its device that shares no cell with it, else starts a new run. A file
without a header cannot be placed and is a run of its own.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

IDENTITY = ("device", "device_name")
"""Header fields that name a device; a CPU adds ``cpu_threads``."""
CELL = ["label", "seconds", "dtype", "batch", "hidden", "heads", "mode", "options"]
"""What makes two rows the same cell, in the columns ``plots.load.prepare_cells`` fills."""
NAMED_FILES = 3
"""A run's name lists this many files, then counts the rest."""


def device_identity(header: dict | None) -> tuple | None:
    """The device a file ran on, as a comparable tuple; None when the file has no header."""
    if not header:
        return None
    # the device's kind only: shards on cuda:0 and cuda:1 of one machine (same model) are one run
    identity = tuple(str(header.get(field)).split(":")[0] if field == "device" else header.get(field)
                     for field in IDENTITY)
    return (*identity, header.get("cpu_threads")) if header.get("device") == "cpu" else identity


def group_files(files: list[tuple[str, dict | None, pd.DataFrame]]) -> list[int]:
    """For each (path, first header, prepared cells) the index of its run, in the order given."""
    runs: list[tuple[tuple | None, set]] = []
    assigned = []
    for _path, header, cells in files:
        identity, mine = device_identity(header), _cell_keys(cells)
        index = next((i for i, (other, seen) in enumerate(runs)
                      if identity is not None and other == identity and not seen & mine), None)
        if index is None:
            runs.append((identity, set()))
            index = len(runs) - 1
        runs[index][1].update(mine)
        assigned.append(index)
    return assigned


def run_name(paths: list[str]) -> str:
    """A run's name: the file itself, or the files' names after their common folder.

    ``results/x/a.jsonl + b.jsonl``: ``Path(name).name`` stays readable (``a.jsonl + b.jsonl``) where
    figures label a run by its file name.
    """
    if len(paths) == 1:
        return paths[0]
    parents = {str(Path(p).parent) for p in paths}
    names = [Path(p).name for p in paths] if len(parents) == 1 else list(paths)
    shown = " + ".join(names[:NAMED_FILES])
    if len(names) > NAMED_FILES:
        shown += f" + {len(names) - NAMED_FILES} more"
    return str(Path(parents.pop()) / shown) if len(parents) == 1 else shown


def merge_runs(files: list[tuple[str, dict | None, pd.DataFrame]]) -> pd.DataFrame:
    """All files' cells in one frame, ``source`` naming each row's run and ``file`` its own file."""
    assigned = group_files(files)
    members: dict[int, list[str]] = {}
    for (path, _, _), index in zip(files, assigned, strict=True):
        members.setdefault(index, []).append(path)
    frames = []
    for (path, _, cells), index in zip(files, assigned, strict=True):
        frames.append(cells.assign(file=path, source=run_name(members[index])))
    return pd.concat(frames, ignore_index=True)


def _cell_keys(cells: pd.DataFrame) -> set:
    present = [column for column in CELL if column in cells]
    return set(cells[present].itertuples(index=False, name=None))
