import json

import pytest
from typer.testing import CliRunner

from bench.cases import Sweep
from bench.cli import app
from bench.commands.anytime import arrange, shard_path
from bench.results import ResultsWriter, read_rows
from bench.runner import run_sweep
from bench.shard import Shard, parse_shard
from tests.bench import fakes


def _grid():
    return Sweep(seconds=(10, 25, 50, 100, 200), mixers=("sa:sdpa", "sa:naive", "lightnet", "kda"),
                 hidden=32, heads=2, min_reps=2, budget_s=0.0)


def test_three_shards_measure_exactly_the_unsharded_cells_once(tmp_path):
    sweep = _grid()
    run_sweep(sweep, ResultsWriter(tmp_path / "all.jsonl"), measure=fakes.ok, isolate=False)
    expected = sorted(row["mixer"] + row["kernel"] + str(row["seconds"]) for row in read_rows(tmp_path / "all.jsonl"))
    sharded = []
    for k in range(3):
        shard = Shard(k, 3)
        path = shard_path(tmp_path / "grid.jsonl", shard)
        run_sweep(sweep, ResultsWriter(path), measure=fakes.ok, isolate=False,
                  cases=arrange(sweep.cases(), shard, None))
        sharded += [row["mixer"] + row["kernel"] + str(row["seconds"]) for row in read_rows(path)]
    assert len(expected) == 20
    assert sorted(sharded) == expected  # every cell, none twice


def test_a_shard_is_every_nth_cell_of_the_anytime_order():
    cases = _grid().cases()
    ordered = arrange(cases, None, 60.0)
    assert arrange(cases, Shard(1, 3), None) == ordered[1::3]
    assert arrange(cases, None, None) == cases  # neither flag: the grid's own order


@pytest.mark.parametrize("text", ["3/3", "-1/3", "1", "a/b", "1/0", "1/2/3"])
def test_bad_shards_fail_with_the_expected_form(text):
    with pytest.raises(ValueError, match=r"K/N with 0 <= K < N"):
        parse_shard(text)


def test_shard_in_file_name_and_header(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["sweep", "--mixers", "sa:sdpa,sa:naive", "--seconds", "1,2,3",
                                      "--shard", "1/2", "--no-isolate", "--hidden", "32", "--heads", "2",
                                      "--reps", "1", "--budget", "0"])
    assert result.exit_code == 0, result.output
    (path,) = (tmp_path / "results").glob("*.jsonl")
    assert path.name.endswith("-shard1of2.jsonl")
    header = json.loads(path.read_text().splitlines()[0])
    assert header["shard"] == "1/2" and header["order"] == "anytime" and header["cells"] == 3
    # Anytime order: sdpa 1, naive 1, sdpa 3, naive 3, sdpa 2, naive 2; shard 1 takes the 2nd, 4th, 6th.
    assert [(r["kernel"], r["seconds"]) for r in read_rows(path)] == [("naive", 1), ("naive", 3), ("naive", 2)]


def test_bad_shard_on_the_command_line_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["sweep", "--shard", "2/2", "--out", str(tmp_path / "r.jsonl")])
    assert result.exit_code == 2
    assert "K counts from 0" in " ".join(result.output.split())


def test_a_shard_without_cells_is_refused():
    small = Sweep(seconds=(10, 25), mixers=("sa:sdpa",), hidden=32, heads=2)
    assert len(arrange(small.cases(), Shard(1, 2), None)) == 1
    with pytest.raises(ValueError, match="shard 2/3 of a 2-cell grid has no cells: use at most 2 shards"):
        arrange(small.cases(), Shard(2, 3), None)
