"""Energy of repeated calls from a cumulative counter that updates in steps.

Neither NVML's nor RAPL's counter moves continuously: each holds its value for an update period
and then jumps (RAPL about 1 ms; NVML on an H200 every 100 ms, and one read takes 3.4 ms there).
Read around 10 calls of an 8192 x 8192 fp32 product on that H200 (21.5 ms each), it gave 13.0,
13.0 and 19.7 J per call, where a 1 s window gives 14.5 J three times over. So the energy is
measured over its own window of repeated calls, after the timed ones, laid out so the steps
cannot bias it:

    period  measured once per counter: the longest gap between counter changes (``update_period``)
    lead-in bursts of calls, a read after each, until the counter changes: t0, E0 (the device is
            already busy, so whatever delay the counter has is the same at both ends)
    window  more bursts until at least max(PERIODS x period, MIN_WINDOW_S) has passed AND the
            counter changed during the last burst: t1, E1, calls completed since t0

Reads are pipelined: the next burst is queued before the host waits for the last one and reads,
so an asynchronous device (CUDA) never idles while the counter is read. Both ends sit on an
observed change, each to within one burst (an eighth of the period, or two reads if longer), so
E1 - E0 belongs to (t1 - t0) of back-to-back calls to within 2 x burst / window: 2.5% at 10
periods, in either direction, on average zero. Results: joules per call (E1 - E0) / calls and mean
power (E1 - E0) / (t1 - t0), both including what the device spends idle between kernels.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

PERIODS = 10
"""The window spans at least this many counter update periods."""
MIN_WINDOW_S = 0.1
"""... and at least this long, so a fast counter (RAPL, 1 ms) still averages many calls."""
BURST_FRACTION = 0.125
"""A burst of calls lasts about this fraction of an update period ..."""
BURST_READS = 2
"""... and at least this many counter reads, so the queued burst outlasts the read."""
LONG_CALL_WINDOWS = 4
"""A call lasting this many windows or more is measured alone, read before and after: each read is
at most one update period stale, so the error is within 2 / (LONG_CALL_WINDOWS x PERIODS) = 5% (RAPL's
1 ms steps under a 0.4 s call: 0.5%), and the window costs one call instead of the four a window of
repeated calls needs when a call outlasts it (a 45 s CPU call would add 135 s to its cell)."""
STALL_S = 2.0
"""A counter that does not change for this long (or 20 periods) is stuck: no number is given."""

Mark = Callable[[], Callable[[], None]]
"""Marks the work issued so far; the returned function waits until that work is done."""


def synchronous() -> Callable[[], None]:
    """The mark of a device whose calls return when their work is done (CPU)."""
    return lambda: None


class CounterStalled(RuntimeError):
    """The counter did not change when it should have; the reading would be invented."""


@dataclass(frozen=True)
class Meter:
    """A cumulative counter (``read_j``: joules, ``source``, ``scope``), its update period and read time."""

    counter: object
    period_s: float
    read_s: float = 0.0


@dataclass(frozen=True)
class Reading:
    joules_per_call: float
    watts: float
    calls: int
    window_s: float


def update_period(read: Callable[[], float], clock: Callable[[], float] = time.perf_counter,
                  changes: int = 5, stall_s: float = STALL_S) -> tuple[float | None, float]:
    """(seconds between counter changes: the longest of ``changes - 1`` gaps, or None when it
    stalls; seconds one read takes)."""
    started, reads = clock(), 1
    last, seen = read(), []
    deadline = clock() + stall_s
    while len(seen) < changes:
        value, now = read(), clock()
        reads += 1
        if value != last:
            last, deadline = value, now + stall_s
            seen.append(now)
        elif now > deadline:
            return None, (now - started) / reads
    return max(later - earlier for earlier, later in zip(seen, seen[1:])), (clock() - started) / reads


def measure(fn: Callable[[], object], meter: Meter, call_s: float, mark: Mark = synchronous,
            clock: Callable[[], float] = time.perf_counter, periods: int = PERIODS,
            min_window_s: float = MIN_WINDOW_S) -> Reading:
    """Joules per call and mean watts of ``fn`` over a window laid out as the module describes.

    ``call_s`` is one call's duration (the timing's median), used only to size the bursts.
    """
    read = meter.counter.read_j
    window_s = max(periods * meter.period_s, min_window_s)
    if call_s >= LONG_CALL_WINDOWS * window_s:
        return _one_call(fn, read, mark, clock, meter)
    burst_s = max(BURST_FRACTION * meter.period_s, BURST_READS * meter.read_s)
    burst = max(1, round(burst_s / max(call_s, 1e-9)))
    stall_s = max(STALL_S, 20 * meter.period_s)

    def issue() -> Callable[[], None]:
        for _ in range(burst):
            fn()
        return mark()

    pending, done, start = issue(), 0, None
    last, changed_at = read(), clock()
    while True:
        queued = issue()
        pending()
        done += burst
        pending = queued
        value, now = read(), clock()
        if value != last:
            last, changed_at = value, now
            if start is None:
                start = (now, value, done)
            elif now - start[0] >= window_s:
                break
        elif now - changed_at > stall_s:
            pending()
            raise CounterStalled(f"the {meter.counter.source} counter did not change for {now - changed_at:.1f} s "
                                 f"while calls ran (update period {meter.period_s * 1e3:.1f} ms)")
    pending()  # the burst still queued is neither counted nor left running
    t0, e0, calls0 = start
    if value <= e0:
        raise CounterStalled(f"the {meter.counter.source} counter went from {e0} J to {value} J over the window")
    return Reading(joules_per_call=(value - e0) / (done - calls0), watts=(value - e0) / (now - t0),
                   calls=done - calls0, window_s=now - t0)


def _one_call(fn: Callable[[], object], read: Callable[[], float], mark: Mark, clock: Callable[[], float],
              meter: Meter) -> Reading:
    """One long call between two reads, nothing else queued (``LONG_CALL_WINDOWS``)."""
    mark()()  # nothing of the timed calls still running
    t0, e0 = clock(), read()
    fn()
    mark()()
    t1, e1 = clock(), read()
    if e1 <= e0:
        raise CounterStalled(f"the {meter.counter.source} counter went from {e0} J to {e1} J over a "
                             f"{t1 - t0:.2f} s call (update period {meter.period_s * 1e3:.1f} ms)")
    return Reading(joules_per_call=e1 - e0, watts=(e1 - e0) / (t1 - t0), calls=1, window_s=t1 - t0)
