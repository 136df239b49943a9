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
