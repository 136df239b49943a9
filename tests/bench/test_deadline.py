import time

import pytest

from bench.cases import Case, Sweep
from bench.deadline import TimeBox
from bench.forecast import PROBE_CALLS, WARMUP_CALLS, Forecast
from bench.order import anytime_order
from bench.phase import FIRST_CALL
from bench.results import ResultsWriter, Row, read_rows
from bench.runner import run_sweep
from tests.bench import fakes


def _case(seconds, mixer="lightnet"):
    return Case(mixer, "torch", float(seconds), "fp32", 1, 32, 2, "cpu")


def _row(case, call_ms, warmup_ms=None, elapsed_s=None, n=10, flops=None):
    return vars(Row.for_case(case, "ok", median_ms=call_ms, n=n, warmup_ms=warmup_ms or call_ms,
                             elapsed_s=elapsed_s, predicted_flops=flops))


def test_unmeasured_series_is_forecast_at_the_budget():
    assert Forecast(budget_s=0.5, min_reps=10).cell_seconds(_case(10), warm=False) == 0.5


def test_call_time_follows_the_measured_power_law():
    forecast = Forecast(budget_s=0.0, min_reps=1)
    forecast.record(_case(10), _row(_case(10), 1.0), first=True)
    forecast.record(_case(40), _row(_case(40), 16.0), first=False)  # quadratic in frames (about)
    f10, f20, f80 = _case(10).frames, _case(20).frames, _case(80).frames
    exponent = 4 / (__import__("math").log(_case(40).frames / f10, 2))
    assert forecast.call_seconds(_case(20)) == pytest.approx(1e-3 * (f20 / f10) ** exponent)
    assert forecast.call_seconds(_case(80)) == pytest.approx(16e-3 * (f80 / _case(40).frames) ** exponent)
    assert forecast.call_seconds(_case(5)) == pytest.approx(1e-3)  # never below the shortest measured


def test_one_length_extrapolates_with_the_cost_model_at_least_linearly():
    flops = {10: 1e9, 100: 1e12}
    forecast = Forecast(budget_s=0.0, min_reps=1, flops=lambda case: flops.get(int(case.seconds)))
    forecast.record(_case(10), _row(_case(10), 2.0, flops=1e9), first=True)
    assert forecast.call_seconds(_case(100)) == pytest.approx(2e-3 * 1000)  # the model's ratio
    forecast = Forecast(budget_s=0.0, min_reps=1, flops=lambda case: 1e9)
    forecast.record(_case(10), _row(_case(10), 2.0, flops=1e9), first=True)
    assert forecast.call_seconds(_case(100)) == pytest.approx(2e-3 * _case(100).frames / _case(10).frames)


def test_cold_worker_pays_the_first_call_again_warm_only_retuning():
    forecast = Forecast(budget_s=1.0, min_reps=10)
    forecast.record(_case(10), _row(_case(10), 1.0, warmup_ms=30_000.0), first=True)
    warm, cold = forecast.cell_seconds(_case(10), warm=True), forecast.cell_seconds(_case(10), warm=False)
    calls = (WARMUP_CALLS + PROBE_CALLS) * 1e-3  # warm-up and probe calls of 1 ms beside the 1 s budget
    assert warm == pytest.approx(1.0 + calls)
    assert cold == pytest.approx(warm + 30.0)
    forecast.record(_case(20), _row(_case(20), 1.0, warmup_ms=5_001.0), first=False)  # retuned at a new length
    assert forecast.cell_seconds(_case(15), warm=True) == pytest.approx(1.0 + calls + 5.0)


def test_time_box_admits_what_fits_and_caps_the_last_timeout():
    now = [100.0]
    box = TimeBox(10.0, Forecast(budget_s=4.0, min_reps=1), clock=lambda: now[0])
    assert box.admits(_case(10), warm=True)
    assert not box.admits(_case(10), warm=True, start_s=7.0)
    now[0] = 107.0
    assert not box.admits(_case(10), warm=True)
    assert box.cap(600.0) == (3.0, True)
    assert box.cap(2.0) == (2.0, False)
    with pytest.raises(ValueError, match="positive"):
        TimeBox(0, Forecast(1.0, 1))


def test_cells_that_cannot_end_in_time_are_left_for_the_next_run(tmp_path):
    now = [0.0]

    def measure(case, min_reps, budget_s):  # a cell takes its length in seconds, a call a tenth of it
        now[0] += case.seconds
        return Row.for_case(case, "ok", median_ms=100.0 * case.seconds, n=1, warmup_ms=100.0 * case.seconds,
                            elapsed_s=case.seconds)

    def box(limit):  # FLOPs linear in length: the forecast of a cell is then about its length
        return TimeBox(limit, Forecast(0.5, 1, flops=lambda case: case.seconds), clock=lambda: now[0])

    sweep = Sweep(seconds=(1, 2, 3, 4, 5), mixers=("sa:sdpa", "sa:naive"), hidden=32, heads=2, min_reps=1,
                  budget_s=0.5)
    cases = anytime_order(sweep.cases())
    path = tmp_path / "r.jsonl"
    run_sweep(sweep, ResultsWriter(path), measure=measure, isolate=False, cases=cases, timebox=box(15.0))
    # Shortest and longest first: 1 + 1 + 5 + 5 s leave 3 s. sdpa and naive at 3 s (forecast 3.2 s, on
    # the line through each series' two cells) are left; sdpa at 2 s (2.3 s) still fits, then nothing.
    assert [(r["kernel"], r["seconds"]) for r in read_rows(path)] == [
        ("sdpa", 1), ("naive", 1), ("sdpa", 5), ("naive", 5), ("sdpa", 2)]
    assert now[0] == 14.0
    run_sweep(sweep, ResultsWriter(path), measure=measure, isolate=False, cases=cases, timebox=box(100.0))
    rows = read_rows(path)
    assert sorted((r["kernel"], r["seconds"]) for r in rows) == sorted((c.kernel, c.seconds) for c in cases)


def test_first_call_phase_reported_with_whether_the_series_is_new(tmp_path):
    seen = []
    sweep = Sweep(seconds=(1, 2), mixers=("sa:sdpa",), hidden=32, heads=2, min_reps=1, budget_s=0.0)
    run_sweep(sweep, ResultsWriter(tmp_path / "r.jsonl"), measure=fakes.timed, isolate=False,
              on_phase=lambda case, event, first: seen.append((case.seconds, event.name, event.started, first)))
    assert seen == [(1, FIRST_CALL, True, True), (1, FIRST_CALL, False, True),
                    (2, FIRST_CALL, True, False), (2, FIRST_CALL, False, False)]


@pytest.mark.slow
def test_worker_reports_phases_and_the_deadline_cuts_a_hung_cell_without_a_row(tmp_path):
    seen = []
    path = tmp_path / "r.jsonl"
    sweep = Sweep(seconds=(10, 20, 30), mixers=("sa:sdpa",), hidden=32, heads=2, min_reps=1, budget_s=0.0,
                  timeout_s=600.0)
    box = TimeBox(1.0, Forecast(sweep.budget_s, sweep.min_reps))
    box.limit_s = float("inf")  # admit the first cell whatever the worker's start costs, then set the limit

    def on_outcome(outcome):
        box.limit_s = box.elapsed() + 3.0

    started = time.monotonic()
    outcomes = run_sweep(sweep, ResultsWriter(path), measure=fakes.slow_first_call, cases=sweep.cases(),
                         timebox=box, on_outcome=on_outcome,
                         on_phase=lambda case, event, first: seen.append((case.seconds, event.started, first)))
    assert [o.case.seconds for o in outcomes] == [10, 20]  # 30 s hangs: cut at the deadline
    assert [r["seconds"] for r in read_rows(path)] == [10, 20]  # and no timeout row for it
    ((cut),) = read_rows(path, kind="cut")  # but how long it ran, which the next run's forecast starts from
    assert cut["cell"] == sweep.cases()[2].id and 0 < cut["ran_s"] < 10
    assert ResultsWriter(path).cuts == {sweep.cases()[2].key: cut["ran_s"]}
    assert time.monotonic() - started < 60
    # The worker told the parent when each first call began and ended; only the 10 s cell's was new.
    assert seen == [(10, True, True), (10, False, True), (20, True, False), (20, False, False), (30, True, False)]


def test_fixed_costs_are_not_scaled_with_the_call():
    """A cell's build and probes cost about the same at every length: forecasting them in proportion
    to the call put sa:sdpa at 200 s (CPU, 1 s of fixed costs on a 16 ms call) at 112 s, against 20 s.
    Here every cell's other work is 1 s plus 4 calls (the probes)."""
    def elapsed(call_s):  # first call, 11 more warm-up and timed calls, then the other work
        return 12 * call_s + 1.0 + 4 * call_s

    forecast = Forecast(budget_s=0.0, min_reps=10, flops=lambda case: case.frames)
    forecast.record(_case(10), _row(_case(10), 16.0, elapsed_s=elapsed(0.016)), first=True)
    call = forecast.call_seconds(_case(200))
    # one cell: its other work less PROBE_CALLS of its calls is fixed, PROBE_CALLS calls scale
    fixed = 1.0 + 4 * 0.016 - PROBE_CALLS * 0.016
    assert forecast.cell_seconds(_case(200), warm=True) == pytest.approx(
        (10 + WARMUP_CALLS + PROBE_CALLS) * call + fixed, rel=1e-9)
    # two cells: the line through them finds the 1 s and the 4 calls
    forecast.record(_case(20), _row(_case(20), 32.0, elapsed_s=elapsed(0.032)), first=False)
    call = forecast.call_seconds(_case(200))
    assert forecast.cell_seconds(_case(200), warm=True) == pytest.approx(
        (10 + WARMUP_CALLS) * call + 1.0 + 4 * call, rel=1e-9)


def test_an_earlier_cut_is_the_least_a_cell_needs_and_the_timeout_the_most():
    forecast = Forecast(budget_s=0.5, min_reps=1, timeout_s=120.0, cut_s={_case(10).key: 40.0})
    assert forecast.cell_seconds(_case(10), warm=False) == 40.0  # cut after 40 s: needs at least that
    assert not TimeBox(40.0, forecast).admits(_case(10), warm=False)
    assert forecast.cell_seconds(_case(20), warm=False) == 0.5
    forecast.record(_case(20), _row(_case(20), 100_000.0), first=True)  # 100 s calls
    assert forecast.cell_seconds(_case(20), warm=True) == 120.0


def test_the_closing_line_names_cells_longer_than_the_limit():
    from bench.commands.anytime import stop_line, too_long

    cases = [_case(10), _case(20)]
    beyond = too_long(cases, done={}, cuts={_case(10).key: 41.0}, time_limit_s=40.0)
    assert beyond == [_case(10).id]
    line = stop_line(0, 2, 40.2, beyond)
    assert line.startswith("0 of 2 cells measured in 40 s; run the same command again to continue")
    assert f"1 cell ran longer than the limit without ending ({_case(10).id}): raise --time-limit" in line
    assert stop_line(2, 2, 40.0, beyond) is None


@pytest.mark.parametrize("limit", [0.0, -1.0, float("inf"), float("nan")])
def test_a_time_limit_must_be_a_finite_positive_number(limit):
    with pytest.raises(ValueError, match="positive number of seconds"):
        TimeBox(limit, Forecast(1.0, 1))
