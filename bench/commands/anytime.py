"""``bench sweep``'s time limit and shards: which cells a run takes, in what order, into which file.

Without ``--time-limit`` and ``--shard`` a sweep keeps the grid's own order (mixer by mixer, short
to long). With either, cells go in the anytime order (``bench.order``); a shard takes every N-th
of them (``bench.shard``) and writes to its own default file.
"""

from __future__ import annotations

from pathlib import Path

from bench.cases import Case, Sweep
from bench.deadline import TimeBox
from bench.forecast import Forecast
from bench.order import anytime_order
from bench.shard import Shard


def arrange(cases: list[Case], shard: Shard | None, time_limit_s: float | None) -> list[Case]:
    """The cells this run takes, in the order it takes them."""
    if shard is None and time_limit_s is None:
        return cases
    ordered = anytime_order(cases)
    return shard.take(ordered) if shard is not None else ordered


def shard_path(path: Path, shard: Shard | None) -> Path:
    """``paper-cuda-host-1a2b3c4d.jsonl`` -> ``paper-cuda-host-1a2b3c4d-shard0of3.jsonl``."""
    if shard is None:
        return path
    return path.with_name(f"{path.stem}-{shard.file_suffix}{path.suffix}")


def time_box(time_limit_s: float | None, plan: Sweep, started: float | None = None) -> TimeBox | None:
    """The run's deadline, counted from ``started`` (the command's start); None without ``--time-limit``."""
    if time_limit_s is None:
        return None
    return TimeBox(time_limit_s, Forecast(plan.budget_s, plan.min_reps), started=started)


def header_fields(shard: Shard | None, time_limit_s: float | None) -> dict:
    """What the results header says about the run's share of the grid and its time box."""
    fields = {}
    if shard is not None:
        fields["shard"] = str(shard)
    if time_limit_s is not None:
        fields["time_limit_s"] = time_limit_s
    if shard is not None or time_limit_s is not None:
        fields["order"] = "anytime"
    return fields


def stop_line(done: int, total: int, elapsed_s: float) -> str | None:
    """The closing line of a run the time limit stopped early; None when every cell is measured."""
    if done >= total:
        return None
    return (f"{done} of {total} cells measured in {elapsed_s:.0f} s; "
            "run the same command again to continue")
