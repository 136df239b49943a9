"""Measure functions for runner tests; module-level so a spawned worker can import them."""

import os
import signal
import time

from bench.results import Row


def ok(case, min_reps, budget_s):
    return Row.for_case(case, "ok", median_ms=float(case.seconds), n=min_reps)


def misbehave(case, min_reps, budget_s):
    """10 s: fine; 11 s: raises; 12 s: hangs; 13 s: dies as the OOM killer would kill it; 14 s: CPU OOM."""
    if case.seconds == 11:
        raise RuntimeError("boom")
    if case.seconds == 12:
        time.sleep(60)
    if case.seconds == 13:
        os.kill(os.getpid(), signal.SIGKILL)
    if case.seconds == 14:
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
    return ok(case, min_reps, budget_s)


def timed(case, min_reps, budget_s):
    """A real ``time_call`` of a short sleep, so the first-call phase is marked as in a real cell."""
    from bench.timing import time_call

    timing = time_call(lambda: time.sleep(0.001), "cpu", budget_s=0.0, min_reps=min_reps)
    return Row.for_case(case, "ok", median_ms=timing.median_ms, n=timing.n, warmup_ms=timing.warmup_ms)


def slow_first_call(case, min_reps, budget_s):
    """A first call in each cell: the process's first takes 2 s (as a compile), others none; 30 s hangs."""
    from bench.phase import FIRST_CALL, phase

    global _calls
    _calls += 1
    with phase(FIRST_CALL):
        time.sleep(60 if case.seconds == 30 else 2 if _calls == 1 else 0)
    return Row.for_case(case, "ok", median_ms=1.0, n=min_reps, warmup_ms=2000.0 if _calls == 1 else 1.0)


_calls = 0
