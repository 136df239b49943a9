"""Turn cases into rows, one isolated cell at a time, appending each row as soon as it exists.

Isolation: cells run in a worker process (spawned once, reused while healthy). A cell that
exceeds its timeout gets its worker killed and a ``timeout`` row; a worker killed by the kernel's
OOM killer (SIGKILL) gives an ``oom`` row; any other death an ``error`` row. The sweep goes on
with a fresh worker. Cells already in the results file are not run again, so re-running the same
command after an interruption (``kill -9`` included) completes the sweep with one row per cell.

A time box (``bench.deadline``) decides which cells still fit before a deadline; the worker tells
the parent when a cell's first call starts and ends (``bench.phase``), for the live display.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench import precision
from bench.cases import Case, Sweep
from bench.deadline import TimeBox
from bench.measure import classify_failure, measure_cell, one_line, prediction_fields
from bench.modes.cell import needed_bytes, predict
from bench.order import series_key
from bench.phase import PhaseEvent, watching
from bench.results import ResultsWriter, Row
from bench.sysinfo import free_memory_bytes

Measure = Callable[[Case, int, float], Row]
PhaseCallback = Callable[[Case, PhaseEvent, bool], None]
STARTUP_TIMEOUT_S = 300


@dataclass(frozen=True)
class Cut:
    """A cell the deadline stopped: how long it ran (its worker's start apart)."""

    ran_s: float


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
    cases: list[Case] | None = None,
    timebox: TimeBox | None = None,
    on_phase: PhaseCallback = lambda case, event, first: None,
) -> list[Outcome]:
    """Run every case not yet in ``writer``'s file; return one outcome per case run or resumed.

    ``cases``: the cells and their order (default ``sweep.cases()``). ``timebox``: start only cells
    forecast to end before its deadline, cut the last one there (no row: a rerun measures it).
    ``on_phase(case, event, first)``: a phase of the running cell began or ended (``bench.phase``);
    ``first`` when the worker process had not run the cell's series before.
    """
    cases = sweep.cases() if cases is None else cases
    if timebox is not None:
        timebox.forecast.cut_s = writer.cuts  # cells an earlier run's deadline cut: the least they need
    outcomes = []
    pool = _Worker(measure) if isolate else _InProcess(measure)
    try:
        for case in cases:
            if case.key in writer.done:
                outcome = Outcome(case, writer.done[case.key], resumed=True)
                _learn(timebox, case, outcome.row, first=_first_in_file(case, outcomes))
            else:
                warm = series_key(case) in pool.warm
                if timebox is not None and not timebox.admits(case, warm, pool.start_cost()):
                    continue  # forecast to end after the deadline: left for the next run
                row = _skip_if_too_big(case) or _run(case, sweep, pool, timebox, on_phase)
                if isinstance(row, Cut):  # no row: the same command measures it next time, and its
                    writer.write_cut(case, row.ran_s)  # forecast is then at least this long
                    break
                writer.write_row(precision.stamp(row, case.device))
                outcome = Outcome(case, writer.done[case.key], resumed=False)
                _learn(timebox, case, outcome.row, first=not warm)
            outcomes.append(outcome)
            on_outcome(outcome)
    finally:
        pool.close()
    return outcomes


def _run(case: Case, sweep: Sweep, pool: _Worker | _InProcess, timebox: TimeBox | None,
         on_phase: PhaseCallback) -> Row | Cut:
    """The cell's row, or a ``Cut`` when the time box's deadline stopped it."""
    pool.ensure_started()
    timeout_s, capped = (sweep.timeout_s, False) if timebox is None else timebox.cap(sweep.timeout_s)
    first = series_key(case) not in pool.warm
    started = time.monotonic()
    row = pool.run(case, sweep.min_reps, sweep.budget_s, timeout_s, lambda event: on_phase(case, event, first))
    if row is not None:
        return row
    if capped:
        return Cut(time.monotonic() - started)
    return Row.for_case(case, "timeout", message=f"no result within {timeout_s:g} s")


def _learn(timebox: TimeBox | None, case: Case, row: dict, first: bool) -> None:
    if timebox is not None:
        timebox.forecast.record(case, row, first)


def _first_in_file(case: Case, earlier: list[Outcome]) -> bool:
    """Whether no earlier resumed cell of ``case``'s series came before it (it paid the first call)."""
    return all(series_key(o.case) != series_key(case) for o in earlier)


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


class _InProcess:
    """Cells measured in this process (``--no-isolate``): no timeouts, no protection from crashes."""

    def __init__(self, measure: Measure):
        self.measure = measure
        self.warm: set[tuple] = set()

    def start_cost(self) -> float:
        return 0.0

    def ensure_started(self) -> None:
        pass

    def run(self, case: Case, min_reps: int, budget_s: float, timeout_s: float,
            on_phase: Callable[[PhaseEvent], None]) -> Row:
        with watching(lambda name, started: on_phase(PhaseEvent(name, started))):
            row = _guarded(self.measure, case, min_reps, budget_s)
        self.warm.add(series_key(case))
        return row

    def close(self) -> None:
        pass


class _Worker:
    """A spawned process that measures cells sent to it; replaced whenever it dies or hangs."""

    def __init__(self, measure: Measure):
        self.measure = measure
        self.context = mp.get_context("spawn")
        self.process = None
        self.conn = None
        self.warm: set[tuple] = set()
        """Series this worker process has run (their first call is paid)."""
        self.started_s: float | None = None
        """How long the last start took (importing torch): what a restart will cost."""

    def start_cost(self) -> float:
        alive = self.process is not None and self.process.is_alive()
        return 0.0 if alive else (self.started_s or 0.0)

    def ensure_started(self) -> None:
        if self.process is None or not self.process.is_alive():
            self._start()

    def _start(self) -> None:
        began = time.monotonic()
        parent, child = self.context.Pipe()
        self.process = self.context.Process(target=_serve, args=(child, self.measure), daemon=True)
        self.process.start()
        child.close()
        self.conn = parent
        self.warm = set()
        # Start-up (importing torch) is not the cell's time: wait for the worker before the clock starts.
        if not parent.poll(STARTUP_TIMEOUT_S) or parent.recv() != "ready":
            raise RuntimeError(f"benchmark worker did not start within {STARTUP_TIMEOUT_S} s")
        self.started_s = time.monotonic() - began

    def run(self, case: Case, min_reps: int, budget_s: float, timeout_s: float,
            on_phase: Callable[[PhaseEvent], None]) -> Row | None:
        """The cell's row, or None (worker killed) when none came within ``timeout_s``."""
        self.ensure_started()
        deadline = time.monotonic() + timeout_s
        try:
            self.conn.send((case, min_reps, budget_s))
            while self.conn.poll(max(0.0, deadline - time.monotonic())):
                message = self.conn.recv()
                if isinstance(message, PhaseEvent):
                    on_phase(message)
                    continue
                self.warm.add(series_key(case))
                return message
            self._kill()
            return None
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
        self.warm = set()  # the next worker pays every series' first call again

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
        with watching(lambda name, started: conn.send(PhaseEvent(name, started))):
            row = _guarded(measure, *job)
        conn.send(row)


def _guarded(measure: Measure, case: Case, min_reps: int, budget_s: float) -> Row:
    """Whatever ``measure`` raises becomes the cell's row, so one cell never stops a sweep."""
    try:
        return measure(case, min_reps, budget_s)
    except Exception as error:  # noqa: BLE001
        return Row.for_case(case, classify_failure(error), message=one_line(error))
