import json

from typer.testing import CliRunner

from bench.cases import Case
from bench.cli import app
from bench.results import ResultsWriter, Row
from plots.firstcall import first_calls
from plots.load import load_cells


def _write(path, cells):
    """``cells``: (mixer, kernel, seconds, status, warmup_ms) in the order a sweep wrote them."""
    writer = ResultsWriter(path)
    writer.write_header({"device_name": "Test GPU"})
    for mixer, kernel, seconds, status, warmup_ms in cells:
        case = Case(mixer, kernel, float(seconds), "fp32", 1, 1024, 4, "cuda")
        ok = status == "ok"
        writer.write_row(Row.for_case(case, status, median_ms=2.0 if ok else None,
                                      warmup_ms=warmup_ms if ok else None))
    return path


def test_first_measured_cell_of_each_series_per_file(tmp_path):
    # Anytime order: every mixer's 10 s, then 400 s (kda re-tunes there), then 100 s.
    first = _write(tmp_path / "a.jsonl", [("kda", "fla", 10, "ok", 100_500.0), ("gsa", "fla", 10, "timeout", None),
                                          ("kda", "fla", 400, "ok", 15_200.0), ("gsa", "fla", 400, "ok", 9_000.0),
                                          ("kda", "fla", 100, "ok", 3.0)])
    second = _write(tmp_path / "b.jsonl", [("kda", "fla", 10, "ok", 4_000.0)])  # the cache kept: no tuning
    table = first_calls(load_cells(first, second))
    got = {(r.file.rsplit("/", 1)[-1], r.label): (r.seconds, r.first_call_s) for r in table.itertuples()}
    assert got == {("a.jsonl", "kda:fla"): (10, 100.5), ("a.jsonl", "gsa:fla"): (400, 9.0),
                   ("b.jsonl", "kda:fla"): (10, 4.0)}


def test_shards_of_one_run_each_show_their_first_call(tmp_path):
    """Disjoint files of one device are one run (``plots.runs``), yet each shard's worker paid its own first call."""
    shard0 = _write(tmp_path / "s0.jsonl", [("kda", "fla", 10, "ok", 100_000.0), ("kda", "fla", 100, "ok", 3.0)])
    shard1 = _write(tmp_path / "s1.jsonl", [("kda", "fla", 400, "ok", 90_000.0)])
    cells = load_cells(shard0, shard1)
    assert cells["source"].nunique() == 1  # one run
    table = first_calls(cells)
    assert [(f.rsplit("/", 1)[-1], s) for f, s in zip(table["file"], table["first_call_s"])] == [
        ("s0.jsonl", 100.0), ("s1.jsonl", 90.0)]


def test_report_prints_first_calls(tmp_path):
    path = _write(tmp_path / "a.jsonl", [("kda", "fla", 10, "ok", 37_000.0), ("kda", "fla", 400, "ok", 900.0)])
    result = CliRunner().invoke(app, ["report", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["first_calls"]
    assert [(r["label"], r["first_call_s"]) for r in rows] == [("kda:fla", 37.0)]
    table = CliRunner().invoke(app, ["report", str(path)])
    assert "First call per file" in table.output and "37" in table.output
