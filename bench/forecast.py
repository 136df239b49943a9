"""How long a cell will take, predicted from the cells of its series already measured.

A time-boxed sweep (``bench.deadline``) asks before each cell whether it can end before the
deadline. The answer comes from the series' own rows (``bench.order.series_key``: one mixer,
kernel, dtype, batch, mode):

- the call time at the new length: between two measured lengths, the power law through them
  (log-log interpolation); beyond the longest, the measured exponent of the two longest, at least
  linear; with one measured length, the cost model's FLOPs ratio (at least linear). Never below
  the shortest measured call.
- the cell's wall time: the timed repetitions (``max(budget, min_reps * call)``, as ``time_call``
  runs them), two warm-up calls, and the measured cell's other costs (building the mixer, the
  memory and backend probes), scaled with the call time;
- plus the series' first call (compilation, autotuning) when the worker process has not run the
  series yet and this session measured it, or else the largest re-tuning seen at a new length
  (fla's kernels autotune again for new shapes: KDA 15 s at 400 s on an H200).

A series with no measured cell is predicted at the per-cell budget alone: its first cell is where
its first-call cost is learnt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.cases import Case
from bench.modes.cell import predict
from bench.order import series_key

WARMUP_CALLS = 2
"""``time_call`` makes one warm-up call, and a second when the first was short."""


@dataclass(frozen=True)
class Observation:
    """What a measured cell tells about its series."""

    frames: int
    call_s: float
    """Median time of one call."""
    flops: float | None
    """The cost model's FLOPs of one call at this length."""
    n: int
    warmup_s: float
    """The first warm-up call (compilation and autotuning land here)."""
    elapsed_s: float | None
    """The whole cell in its worker (None when the measure function does not say)."""
    first: bool
    """True when this cell paid the series' first call in its process."""

    @property
    def other_s(self) -> float:
        """Time the cell spent outside its warm-up and timed calls (build, probes)."""
        if self.elapsed_s is None:
            return 0.0
        return max(0.0, self.elapsed_s - self.warmup_s - (self.n + WARMUP_CALLS - 1) * self.call_s)


class Forecast:
    """Predicted wall seconds of a cell, learnt from the rows of its series."""

    def __init__(self, budget_s: float, min_reps: int, flops=None):
        self.budget_s = budget_s
        self.min_reps = min_reps
        self.flops = flops or _model_flops
        self.seen: dict[tuple, list[Observation]] = {}
        self.first_call_s: dict[tuple, float] = {}

    def record(self, case: Case, row: dict, first: bool) -> None:
        """Learn from a cell's row; ``first`` when it paid its series' first call in its process."""
        if row.get("status") != "ok" or not row.get("median_ms"):
            return
        seen = Observation(frames=case.frames, call_s=row["median_ms"] / 1e3, flops=row.get("predicted_flops"),
                           n=row.get("n") or self.min_reps, warmup_s=(row.get("warmup_ms") or 0.0) / 1e3,
                           elapsed_s=row.get("elapsed_s"), first=first)
        self.seen.setdefault(series_key(case), []).append(seen)
        if first:
            self.first_call_s[series_key(case)] = seen.warmup_s

    def cell_seconds(self, case: Case, warm: bool) -> float:
        """Predicted wall time of ``case``; ``warm``: its series already ran in the current worker."""
        seen = self.seen.get(series_key(case), [])
        if not seen:
            return self.budget_s
        call = self.call_seconds(case)
        nearest = min(seen, key=lambda o: abs(math.log(o.frames / case.frames)))
        other = nearest.other_s * max(1.0, call / nearest.call_s)
        timed = max(self.budget_s, self.min_reps * call) + WARMUP_CALLS * call
        retune = max((o.warmup_s - o.call_s for o in seen if not o.first), default=0.0)
        first = self.first_call_s.get(series_key(case), 0.0) if not warm else 0.0
        return timed + other + max(retune, first, 0.0)

    def call_seconds(self, case: Case) -> float:
        """One call's time at ``case``'s length (module docstring)."""
        seen = sorted(self.seen[series_key(case)], key=lambda o: o.frames)
        frames = case.frames
        if frames <= seen[0].frames:
            return seen[0].call_s
        below = [o for o in seen if o.frames <= frames]
        above = [o for o in seen if o.frames > frames]
        if above:
            return _power_law(below[-1], above[0], frames)
        longest = seen[-1]
        if len(seen) >= 2:
            exponent = max(1.0, _exponent(seen[-2], longest))
            return longest.call_s * (frames / longest.frames) ** exponent
        ratio = frames / longest.frames
        predicted = self.flops(case)
        if longest.flops and predicted:
            ratio = max(ratio, predicted / longest.flops)
        return longest.call_s * ratio


def _exponent(a: Observation, b: Observation) -> float:
    if a.frames == b.frames or a.call_s <= 0 or b.call_s <= 0:
        return 1.0
    return math.log(b.call_s / a.call_s) / math.log(b.frames / a.frames)


def _power_law(a: Observation, b: Observation, frames: int) -> float:
    return a.call_s * (frames / a.frames) ** _exponent(a, b)


def _model_flops(case: Case) -> float | None:
    """The cost model's FLOPs of one call of ``case``."""
    return predict(case).flops
