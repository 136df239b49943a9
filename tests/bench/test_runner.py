import json

import pytest

from bench.cases import Sweep
from bench.measure import classify_failure, measure_cell
from bench.results import ResultsWriter, read_rows
from bench.runner import run_sweep
from tests.bench import fakes


def _sweep(seconds, **kw):
    return Sweep(seconds=seconds, mixers=("sa:sdpa",), hidden=32, heads=2, min_reps=2, budget_s=0.0, **kw)


def test_in_process_runner_writes_one_row_per_cell(tmp_path):
    writer = ResultsWriter(tmp_path / "r.jsonl")
    outcomes = run_sweep(_sweep((10, 20)), writer, measure=fakes.ok, isolate=False)
    rows = read_rows(tmp_path / "r.jsonl")
    assert [r["seconds"] for r in rows] == [10, 20]
    assert [o.resumed for o in outcomes] == [False, False]


def test_rerun_resumes_without_duplicates(tmp_path):
    path = tmp_path / "r.jsonl"
    run_sweep(_sweep((10,)), ResultsWriter(path), measure=fakes.ok, isolate=False)
    outcomes = run_sweep(_sweep((10, 20)), ResultsWriter(path), measure=fakes.ok, isolate=False)
    assert [o.resumed for o in outcomes] == [True, False]
    assert [r["seconds"] for r in read_rows(path)] == [10, 20]


def test_torn_last_line_is_cut_and_the_cell_rerun(tmp_path):
    path = tmp_path / "r.jsonl"
    run_sweep(_sweep((10, 20)), ResultsWriter(path), measure=fakes.ok, isolate=False)
    text = path.read_text()
    path.write_text(text[: len(text) - 30])  # as if killed while writing the second row
    assert [r["seconds"] for r in read_rows(path)] == [10]
    run_sweep(_sweep((10, 20)), ResultsWriter(path), measure=fakes.ok, isolate=False)
    lines = path.read_text().splitlines()
    assert all(json.loads(line) for line in lines)
    assert [r["seconds"] for r in read_rows(path)] == [10, 20]


@pytest.mark.slow
def test_isolated_cells_fail_alone_and_the_sweep_goes_on(tmp_path):
    path = tmp_path / "r.jsonl"
    sweep = _sweep((10, 11, 12, 13, 14, 15), timeout_s=3.0)
    run_sweep(sweep, ResultsWriter(path), measure=fakes.misbehave, isolate=True)
    rows = {r["seconds"]: r for r in read_rows(path)}
    assert {s: r["status"] for s, r in rows.items()} == {
        10: "ok", 11: "error", 12: "timeout", 13: "oom", 14: "oom", 15: "ok"}
    assert "boom" in rows[11]["message"]
    assert "SIGKILL" in rows[13]["message"]


def test_cell_too_big_for_memory_is_skipped_with_its_prediction(tmp_path):
    # Naive attention at 10,000 s: 2 * 4 heads * 500k^2 frames * 4 B is far beyond any machine.
    path = tmp_path / "r.jsonl"
    sweep = Sweep(seconds=(10_000,), mixers=("sa:naive",), hidden=1024, heads=4)
    run_sweep(sweep, ResultsWriter(path), measure=fakes.ok, isolate=False)
    (row,) = read_rows(path)
    assert row["status"] == "skipped"
    assert row["predicted_activation_bytes"] > 1e12
    assert "GiB free" in row["message"]


def test_measure_cell_real_mixer():
    (case,) = _sweep((1,)).cases()
    row = measure_cell(case, min_reps=3, budget_s=0.0)
    assert row.status == "ok", row.message
    assert row.n == 3 and row.median_ms > 0
    # At 49 frames and width 32 fixed scratch dominates; the cost model is checked at scale elsewhere.
    assert row.peak_above_bytes >= row.predicted_activation_bytes > 0
    assert row.peak_bytes > row.peak_above_bytes


def test_measure_cell_turns_exceptions_into_rows():
    (case,) = Sweep(seconds=(1,), mixers=("sa",), hidden=32, heads=2, dtypes=("fp16",)).cases()
    row = measure_cell(case, min_reps=1, budget_s=0.0)
    assert row.status in ("ok", "error")  # fp16 matmul on CPU may be unsupported: either way, a row


def test_failure_classification():
    assert classify_failure(MemoryError()) == "oom"
    assert classify_failure(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")) == "oom"
    assert classify_failure(ValueError("shape mismatch")) == "error"
