"""``bench compare``: a file against itself is all "same"; a 30% slower mixer is named and fails the run."""

import json

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.commands.compare import compare_cells
from plots.load import load_cells
from tests.plots.synthetic import write_results

runner = CliRunner()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return write_results(tmp_path_factory.mktemp("compare") / "base.jsonl", seconds=(10, 50, 100))


def _slower_copy(base, path, label, factor):
    """A copy of ``base`` with every timing of ``label`` multiplied: the file a slowed kernel would give."""
    lines = []
    for line in base.read_text().splitlines():
        row = json.loads(line)
        if row.get("kind") == "cell" and f"{row['mixer']}:{row['kernel']}" == label:
            for field in ("median_ms", "p20_ms", "p80_ms", "min_ms"):
                row[field] *= factor
        lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n")
    return path


def _compare(*args):
    return runner.invoke(app, ["compare", *map(str, args)])


def test_a_file_against_itself_is_all_same(base):
    result = _compare(base, base)
    assert result.exit_code == 0, result.output
    assert "12 same" in result.output and "no regression" in result.output
    assert "different devices" not in result.output


def test_a_mixer_made_30_percent_slower_is_named_and_fails(base, tmp_path):
    slowed = _slower_copy(base, tmp_path / "new.jsonl", "kda:torch", 1.3)
    result = _compare(base, slowed)
    assert result.exit_code == 1
    regressions = [line for line in result.output.splitlines() if line.startswith("regression:")]
    assert regressions == ["regression: kda:torch at 10 s, 50 s, 100 s (up to 1.30x)"]
    assert "3 slower" in result.output and "9 same" in result.output


def test_fail_above_sets_the_threshold(base, tmp_path):
    slowed = _slower_copy(base, tmp_path / "new.jsonl", "fox:torch", 1.08)
    # 8% is beyond the runs' noise (2% spread each) but under the default 10%: reported, not failed.
    assert _compare(base, slowed).exit_code == 0
    assert _compare(base, slowed, "--fail-above", "0.05").exit_code == 1
    assert _compare(base, slowed, "--fail-above", "-1").exit_code == 2


def test_verdicts_judge_noise_from_each_runs_spread(base, tmp_path):
    cells = load_cells(base)
    noisy = cells.copy()
    kda = noisy["label"] == "kda:torch"
    # 30% slower but each call wandering by +-25%: the p20-p80 ranges overlap, so "same", never a failure.
    noisy.loc[kda, "median_ms"] *= 1.3
    noisy.loc[kda, "p20_ms"] = noisy.loc[kda, "median_ms"] * 0.75
    noisy.loc[kda, "p80_ms"] = noisy.loc[kda, "median_ms"] * 1.25
    table = compare_cells(cells, noisy)
    assert set(table.loc[table["mixer"] == "kda", "verdict"]) == {"same"} and not table["regression"].any()
    faster = cells.copy()
    faster.loc[kda, ["median_ms", "p20_ms", "p80_ms"]] *= 0.5
    assert set(compare_cells(cells, faster).query("mixer == 'kda'")["verdict"]) == {"faster"}


def test_a_cell_that_stops_running_is_a_regression(base, tmp_path):
    broken = write_results(tmp_path / "new.jsonl", seconds=(10, 50, 100), not_measured={("sa:naive", 100): "oom"})
    result = _compare(base, broken)
    assert result.exit_code == 1 and "now oom" in result.output
    assert "regression: sa:naive at 100 s" in result.output


def test_different_devices_are_announced_and_missing_cells_listed(base, tmp_path):
    other = write_results(tmp_path / "new.jsonl", seconds=(10, 50), device_name="Other CPU")
    result = _compare(base, other)
    assert result.exit_code == 0
    assert "different devices: BASE ran on Test CPU (2 cores), NEW on Other CPU" in " ".join(result.output.split())
    assert "4 only in BASE" in result.output
