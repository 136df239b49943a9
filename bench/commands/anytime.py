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
    if shard is None:
        return ordered
    taken = shard.take(ordered)
    if not taken:
        raise ValueError(f"shard {shard} of a {len(ordered)}-cell grid has no cells: use at most "
                         f"{len(ordered)} shards")
    return taken


def shard_path(path: Path, shard: Shard | None) -> Path:
    """``paper-cuda-host-1a2b3c4d.jsonl`` -> ``paper-cuda-host-1a2b3c4d-shard0of3.jsonl``."""
    if shard is None:
        return path
    return path.with_name(f"{path.stem}-{shard.file_suffix}{path.suffix}")


def time_box(time_limit_s: float | None, plan: Sweep, started: float | None = None) -> TimeBox | None:
    """The run's deadline, counted from ``started`` (the command's start); None without ``--time-limit``."""
    if time_limit_s is None:
        return None
    return TimeBox(time_limit_s, Forecast(plan.budget_s, plan.min_reps, timeout_s=plan.timeout_s), started=started)


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


def stop_line(done: int, total: int, elapsed_s: float, too_long: list[str] = ()) -> str | None:
    """The closing line of a run the time limit stopped early; None when every cell is measured.
    ``too_long``: cells that an earlier deadline cut after running longer than the whole limit, which
    no rerun under the same limit can measure."""
    if done >= total:
        return None
    line = f"{done} of {total} cells measured in {elapsed_s:.0f} s; run the same command again to continue"
    if too_long:
        named = ", ".join(too_long[:3]) + (f" and {len(too_long) - 3} more" if len(too_long) > 3 else "")
        line += (f"; {len(too_long)} cell{'s' * (len(too_long) != 1)} ran longer than the limit without ending "
                 f"({named}): raise --time-limit to measure {'them' if len(too_long) != 1 else 'it'}")
    return line


def too_long(cases: list[Case], done: dict, cuts: dict[tuple, float], time_limit_s: float | None) -> list[str]:
    """Ids of the unmeasured cells whose earlier cut ran at least the whole time limit."""
    if time_limit_s is None:
        return []
    return [case.id for case in cases if case.key not in done and cuts.get(case.key, 0.0) >= time_limit_s]
