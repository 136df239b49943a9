"""A time box for a sweep: start a cell only when its forecast ends before the deadline.

``bench sweep --time-limit SECONDS`` makes one ``TimeBox`` when the command starts. Before each
cell the runner asks ``admits``: the cell's forecast (``bench.forecast``: its series' measured
calls, its first call when the worker has not run the series yet, and the per-cell budget) plus
any worker start must fit in the time left. A cell that does not fit is left for the next run,
and later cells (shorter ones of other series) may still fit. A cell that runs gets ``cap``: its
timeout is cut to the time left, and a cell stopped by that cut writes no row, so running the
same command again measures it. Nothing here runs a cell; it only decides.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from bench.cases import Case
from bench.forecast import Forecast


class TimeBox:
    """A deadline ``limit_s`` after creation and the forecast that decides what still fits."""

    def __init__(self, limit_s: float, forecast: Forecast, clock: Callable[[], float] = time.monotonic,
                 started: float | None = None):
        if not math.isfinite(limit_s) or limit_s <= 0:
            raise ValueError(f"--time-limit must be a positive number of seconds, got {limit_s:g}")
        self.limit_s = limit_s
        self.forecast = forecast
        self.clock = clock
        self.started = clock() if started is None else started
        """The clock's reading when the time box began (the command's start)."""

    def elapsed(self) -> float:
        return self.clock() - self.started

    def remaining(self) -> float:
        return self.limit_s - self.elapsed()

    def admits(self, case: Case, warm: bool, start_s: float = 0.0) -> bool:
        """Whether ``case`` (plus ``start_s`` to start a worker first) is forecast to end in time."""
        return start_s + self.forecast.cell_seconds(case, warm) <= self.remaining()

    def cap(self, timeout_s: float) -> tuple[float, bool]:
        """The cell's timeout cut to the time left, and whether the cut is what binds."""
        left = max(0.0, self.remaining())
        return (left, True) if left < timeout_s else (timeout_s, False)
