"""Turn cases into rows, one isolated cell at a time, appending each row as soon as it exists.

Isolation: cells run in a worker process (spawned once, reused while healthy). A cell that
exceeds its timeout gets its worker killed and a ``timeout`` row; a worker killed by the kernel's
OOM killer (SIGKILL) gives an ``oom`` row; any other death an ``error`` row. The sweep goes on
with a fresh worker. Cells already in the results file are not run again, so re-running the same
command after an interruption (``kill -9`` included) completes the sweep with one row per cell.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from collections.abc import Callable
from dataclasses import dataclass

from bench import precision
from bench.cases import Case, Sweep
from bench.measure import classify_failure, measure_cell, one_line, prediction_fields
from bench.modes.cell import needed_bytes, predict
from bench.results import ResultsWriter, Row
from bench.sysinfo import free_memory_bytes

Measure = Callable[[Case, int, float], Row]
STARTUP_TIMEOUT_S = 300


@dataclass
class Outcome:
    case: Case
    row: dict
    resumed: bool
    """True when the row was already in the file and the cell was not run again."""


def run_sweep(
    sweep: Sweep,
    writer: ResultsWriter,
    measure: Measure = measure_cell,
    isolate: bool = True,
    on_outcome: Callable[[Outcome], None] = lambda outcome: None,
) -> list[Outcome]:
    """Run every case of ``sweep`` not yet in ``writer``'s file; return one outcome per case."""
    cases = sweep.cases()
    outcomes = []
    pool = _Worker(measure) if isolate else None
    try:
        for case in cases:
            if case.key in writer.done:
                outcome = Outcome(case, writer.done[case.key], resumed=True)
            else:
                row = _skip_if_too_big(case) or _run(case, sweep, measure, pool)
                writer.write_row(precision.stamp(row, case.device))
                outcome = Outcome(case, writer.done[case.key], resumed=False)
            outcomes.append(outcome)
            on_outcome(outcome)
    finally:
        if pool is not None:
            pool.close()
    return outcomes


def _run(case: Case, sweep: Sweep, measure: Measure, pool: _Worker | None) -> Row:
    if pool is None:
        return _guarded(measure, case, sweep.min_reps, sweep.budget_s)
    return pool.run(case, sweep.min_reps, sweep.budget_s, sweep.timeout_s)


def _skip_if_too_big(case: Case) -> Row | None:
    """A ``skipped`` row when the cost model says the cell cannot fit in free memory."""
    predicted = predict(case)
    needed = needed_bytes(case, predicted)
    free = free_memory_bytes(case.device)
    if free is None or needed <= free:
        return None
    return Row.for_case(
        case, "skipped",
        message=f"cost model predicts {needed / 2**30:.2f} GiB, {free / 2**30:.2f} GiB free",
        **prediction_fields(predicted),
    )


class _Worker:
    """A spawned process that measures cells sent to it; replaced whenever it dies or hangs."""

    def __init__(self, measure: Measure):
        self.measure = measure
        self.context = mp.get_context("spawn")
        self.process = None
        self.conn = None

    def _start(self) -> None:
        parent, child = self.context.Pipe()
        self.process = self.context.Process(target=_serve, args=(child, self.measure), daemon=True)
        self.process.start()
        child.close()
        self.conn = parent
        # Start-up (importing torch) is not the cell's time: wait for the worker before the clock starts.
        if not parent.poll(STARTUP_TIMEOUT_S) or parent.recv() != "ready":
            raise RuntimeError(f"benchmark worker did not start within {STARTUP_TIMEOUT_S} s")

    def run(self, case: Case, min_reps: int, budget_s: float, timeout_s: float) -> Row:
        if self.process is None or not self.process.is_alive():
            self._start()
        try:
            self.conn.send((case, min_reps, budget_s))
            if self.conn.poll(timeout_s):
                return self.conn.recv()
            self._kill()
            return Row.for_case(case, "timeout", message=f"no result within {timeout_s:g} s")
        except (EOFError, BrokenPipeError, ConnectionResetError):
            self.process.join(5)
            code = self.process.exitcode
            self._kill()
            if code == -signal.SIGKILL:
                return Row.for_case(case, "oom", message="worker killed by SIGKILL (the OOM killer)")
            return Row.for_case(case, "error", message=f"worker died with exit code {code}")

    def _kill(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.process = None

    def close(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.conn.send(None)
            self.process.join(10)
        self._kill()


def _serve(conn, measure: Measure) -> None:
    """Worker loop: measure each case received; stop on ``None`` or when the parent is gone."""
    precision.adopt()  # the parent's --fp32-precision, before anything compiles here
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        conn.send(_guarded(measure, *job))


def _guarded(measure: Measure, case: Case, min_reps: int, budget_s: float) -> Row:
    """Whatever ``measure`` raises becomes the cell's row, so one cell never stops a sweep."""
    try:
        return measure(case, min_reps, budget_s)
    except Exception as error:  # noqa: BLE001
        return Row.for_case(case, classify_failure(error), message=one_line(error))
