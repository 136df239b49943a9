"""``bench plot``: which files it writes, and one-line errors for bad input."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.cli import app
from plots.load import by_settings, load_cells
from tests.plots.synthetic import append_accuracy, write_results

runner = CliRunner()


def test_plot_writes_every_figure_in_png_svg_and_pdf(tmp_path):
    results = write_results(tmp_path / "r.jsonl", seconds=(10, 50, 100))
    append_accuracy(results, {"sa:naive": 0.36, "kda:torch": 0.33})
    result = runner.invoke(app, ["plot", str(results), "--out", str(tmp_path / "figs"), "--pdf", "--paper", "--log"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert names == sorted(f"{stem}.{fmt}" for stem in ("figure2", "cost_model", "accuracy_latency")
                           for fmt in ("png", "svg", "pdf"))
    # The command prints each path it wrote, one per line; the file's code goes to stderr.
    assert sorted(result.stdout.split()) == sorted(str(tmp_path / "figs" / name) for name in names)
    assert result.stderr.startswith(f"{results}: code not recorded")


def test_one_figure_per_settings_named_like_case_ids(tmp_path):
    cells = load_cells(write_results(tmp_path / "r.jsonl", seconds=(10, 50)))
    wide = cells.copy()
    wide["hidden"] = 1024
    names = [suffix for suffix, _ in by_settings(pd.concat([cells, wide]))]
    assert names == ["-fp32-B1-D256-H4-forward", "-fp32-B1-D1024-H4-forward"]
    assert [suffix for suffix, _ in by_settings(cells)] == [""]


@pytest.mark.parametrize("content, message", [(None, "no such results file"),
                                              ('{"kind": "header"}\n', "no cell rows")], ids=["missing", "empty"])
def test_bad_input_is_one_line(tmp_path, content, message):
    path = tmp_path / "r.jsonl"
    if content is not None:
        path.write_text(content)
    result = runner.invoke(app, ["plot", str(path), "--out", str(tmp_path / "figs")])
    assert result.exit_code == 2 and message in result.output
