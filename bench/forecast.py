"""How long a cell will take, predicted from the cells of its series already measured.

A time-boxed sweep (``bench.deadline``) asks before each cell whether it can end before the
deadline. The answer comes from the series' own rows (``bench.order.series_key``: one mixer,
kernel, dtype, batch, mode):

- the call time at the new length: between two measured lengths, the power law through them
  (log-log interpolation); beyond the longest, the measured exponent of the two longest, at least
  linear; with one measured length, the cost model's FLOPs ratio (at least linear). Never below
  the shortest measured call.
- the cell's wall time: the timed repetitions (``max(budget, min_reps * call)``, as ``time_call``
  runs them), two warm-up calls, and the measured cells' other costs (building the mixer, the
  memory and backend probes, the energy window): a fixed part and a part per call, fitted through
  the series' two longest cells (with one cell: its fixed part and ``PROBE_CALLS`` calls);
- plus the series' first call (compilation, autotuning) when the worker process has not run the
  series yet and this session measured it, or else the largest re-tuning seen at a new length
  (fla's kernels autotune again for new shapes: KDA 15 s at 400 s on an H200);
- never less than an earlier run's deadline let the cell run without ending (``cut`` lines), and
  never more than the per-cell timeout.

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
PROBE_CALLS = 3
"""Calls' worth of a cell's other work that grows with its call: the memory probe's call (under the
profiler on CPU, slower than a plain call) and SDPA's profiled backend call. The rest of the other
work (building the mixer, starting the profiler, the energy window of at least 10 counter periods) is
taken as fixed: scaling it with the call time forecast ``sa:sdpa`` at 200 s on CPU at 112 s against
the 20 s it takes, and so put the longest lengths off behind the middle ones."""


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

    def __init__(self, budget_s: float, min_reps: int, flops=None, timeout_s: float | None = None,
                 cut_s: dict[tuple, float] | None = None):
        self.budget_s = budget_s
        self.min_reps = min_reps
        self.flops = flops or _model_flops
        self.timeout_s = timeout_s
        """A cell ends by its timeout whatever the forecast says."""
        self.cut_s = cut_s if cut_s is not None else {}
        """Seconds that cells cut at an earlier run's deadline ran without ending (``ResultsWriter.cuts``):
        a lower bound on their time, so a cell longer than the whole limit is not retried forever."""
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
        seconds = max(self._predicted(case, warm), self.cut_s.get(case.key, 0.0))
        return seconds if self.timeout_s is None else min(seconds, self.timeout_s)

    def _predicted(self, case: Case, warm: bool) -> float:
        seen = self.seen.get(series_key(case), [])
        if not seen:
            return self.budget_s
        call = self.call_seconds(case)
        other = _other_seconds(seen, case.frames, call)
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


def _other_seconds(seen: list[Observation], frames: int, call: float) -> float:
    """The cell's work beside its warm-up and timed calls: a line through the series' two longest cells
    (fixed part plus a part per call: build, probes, energy window), or with one cell, its fixed part
    plus ``PROBE_CALLS`` calls."""
    longest = sorted(seen, key=lambda o: o.frames)[-2:]
    if len(longest) == 2 and longest[1].call_s > longest[0].call_s:
        a, b = longest
        slope = max(0.0, (b.other_s - a.other_s) / (b.call_s - a.call_s))
        return max(0.0, b.other_s + slope * (call - b.call_s))
    nearest = min(seen, key=lambda o: abs(math.log(o.frames / frames)))
    return max(0.0, nearest.other_s - PROBE_CALLS * nearest.call_s) + PROBE_CALLS * call


def _exponent(a: Observation, b: Observation) -> float:
    if a.frames == b.frames or a.call_s <= 0 or b.call_s <= 0:
        return 1.0
    return math.log(b.call_s / a.call_s) / math.log(b.frames / a.frames)


def _power_law(a: Observation, b: Observation, frames: int) -> float:
    return a.call_s * (frames / a.frames) ** _exponent(a, b)


def _model_flops(case: Case) -> float | None:
    """The cost model's FLOPs of one call of ``case``."""
    return predict(case).flops
