"""Energy of repeated calls from a cumulative counter that updates in steps.

Neither NVML's nor RAPL's counter moves continuously: each holds its value for an update period
(RAPL about 1 ms; NVML tens of ms, depending on the GPU) and then jumps. Reading it around 10 calls
of 0.2 ms would give 0 or one whole step, so the energy is measured over its own window of
repeated calls, after the timed ones, laid out so the steps cannot bias it:

    period  measured once per counter: the longest gap between counter changes (``update_period``)
    lead-in bursts of calls until the counter changes: t0, E0 (the device is already busy, so
            whatever delay the counter has before it shows energy is the same at both ends)
    window  more bursts, a read after each, until at least max(PERIODS x period, MIN_WINDOW_S)
            has passed AND the counter changed during the last burst: t1, E1, calls

Both ends are placed on an observed change, each to within one burst (sized to a quarter of the
period), so the window's energy E1 - E0 belongs to (t1 - t0) of back-to-back calls to within
about 2 x burst / window: 5% at 10 periods, in either direction, on average zero. Results:
joules per call (E1 - E0) / calls and mean power (E1 - E0) / (t1 - t0), both including whatever
the device spends while idle between kernels, as a deployment pays it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

PERIODS = 10
"""The window spans at least this many counter update periods."""
MIN_WINDOW_S = 0.1
"""... and at least this long, so a fast counter (RAPL, 1 ms) still averages many calls."""
BURST_FRACTION = 0.25
"""A burst of calls lasts about this fraction of an update period."""
STALL_S = 2.0
"""A counter that does not change for this long (or 20 periods) is stuck: no number is given."""


class CounterStalled(RuntimeError):
    """The counter did not change when it should have; the reading would be invented."""


@dataclass(frozen=True)
class Meter:
    """A cumulative counter (``read_j``: joules, ``source``, ``scope``) and its measured update period."""

    counter: object
    period_s: float


@dataclass(frozen=True)
class Reading:
    joules_per_call: float
    watts: float
    calls: int
    window_s: float


def update_period(read: Callable[[], float], clock: Callable[[], float] = time.perf_counter,
                  changes: int = 5, stall_s: float = STALL_S) -> float | None:
    """Seconds between counter changes (the longest of ``changes - 1`` gaps); None when it stalls."""
    last, seen = read(), []
    deadline = clock() + stall_s
    while len(seen) < changes:
        value, now = read(), clock()
        if value != last:
            last, deadline = value, now + stall_s
            seen.append(now)
        elif now > deadline:
            return None
    return max(later - earlier for earlier, later in zip(seen, seen[1:]))


def measure(fn: Callable[[], object], meter: Meter, call_s: float, sync: Callable[[], None] = lambda: None,
            clock: Callable[[], float] = time.perf_counter, periods: int = PERIODS,
            min_window_s: float = MIN_WINDOW_S) -> Reading:
    """Joules per call and mean watts of ``fn`` over a window laid out as the module describes.

    ``call_s`` is one call's duration (the timing's median), used only to size the bursts; ``sync``
    waits for queued work (CUDA) so that a read after it covers every call issued before.
    """
    read = meter.counter.read_j
    burst = max(1, int(BURST_FRACTION * meter.period_s / max(call_s, 1e-9)))
    stall_s = max(STALL_S, 20 * meter.period_s)
    window_s = max(periods * meter.period_s, min_window_s)

    def run_burst() -> None:
        for _ in range(burst):
            fn()
        sync()

    def until_change(started: float, last: float, minimum_s: float) -> tuple[float, float, int]:
        """Bursts until ``minimum_s`` has passed since ``started`` and the last burst changed the counter."""
        changed_at, calls = started, 0
        while True:
            run_burst()
            calls += burst
            value, now = read(), clock()
            if value != last:
                if now - started >= minimum_s:
                    return now, value, calls
                last, changed_at = value, now
            elif now - changed_at > stall_s:
                raise CounterStalled(f"the {meter.counter.source} counter did not change for {now - changed_at:.1f} s "
                                     f"while calls ran (update period {meter.period_s * 1e3:.1f} ms)")

    t0, e0, _ = until_change(clock(), read(), 0.0)
    t1, e1, calls = until_change(t0, e0, window_s)
    if e1 <= e0:
        raise CounterStalled(f"the {meter.counter.source} counter went from {e0} J to {e1} J over the window")
    return Reading(joules_per_call=(e1 - e0) / calls, watts=(e1 - e0) / (t1 - t0), calls=calls, window_s=t1 - t0)
