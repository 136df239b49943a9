"""``bench report`` and ``bench compare`` over several files of one run, and the messages of cells that
did not measure in every report format."""

import json

import pytest
from typer.testing import CliRunner

from bench.cli import app
from plots.notes import unmeasured_notes
from tests.plots.synthetic import write_results

runner = CliRunner()
WHY = "OutOfResources: shared memory, Required: 525312 [Errno 0]"


@pytest.fixture(scope="module")
def failing(tmp_path_factory):
    """A run whose fox:torch rows failed at two lengths with a library's message, and one sa:naive oom."""
    path = write_results(tmp_path_factory.mktemp("notes") / "f.jsonl", seconds=(10, 25, 50),
                         not_measured={("fox:torch", 10): "error", ("fox:torch", 50): "error",
                                       ("sa:naive", 50): "oom"})
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        if row.get("status") == "error":
            row["message"] = WHY + "\nsecond line of a traceback"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _run(*args):
    result = runner.invoke(app, [*map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


def test_one_note_per_mixer_status_and_message(failing):
    from plots.load import load_cells

    assert unmeasured_notes(load_cells(failing)) == [  # in the file's order, newlines gone
        "sa:naive fp32 oom at 50 s: synthetic oom",
        f"fox:torch fp32 error at 10, 50 s: {WHY} second line of a traceback"]


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_terminal_and_markdown_show_why(failing, fmt):
    out = " ".join(_run("report", failing, "--format", fmt).split())  # rich may wrap a long line
    assert f"fox:torch fp32 error at 10, 50 s: {WHY}" in out
    assert "sa:naive fp32 oom at 50 s: synthetic oom" in out


def test_html_shows_why(failing, tmp_path):
    page = tmp_path / "r.html"
    _run("report", failing, "--format", "csv", "--html", page)
    assert "fox:torch fp32 error at 10, 50 s: OutOfResources: shared memory" in page.read_text()


def test_compare_reads_shards_as_one_run(tmp_path):
    whole = write_results(tmp_path / "whole.jsonl", seconds=(10, 50))
    shards = [write_results(tmp_path / f"s{k}.jsonl", labels=labels, seconds=(10, 50))
              for k, labels in enumerate((("sa:naive", "sa:sdpa"), ("kda:torch", "fox:torch")))]
    out = _run("compare", whole, ",".join(map(str, shards)))
    assert "8 same" in out and "only in" not in out


def test_compare_refuses_a_side_that_is_two_runs(tmp_path):
    one = write_results(tmp_path / "one.jsonl", seconds=(10, 50))
    again = write_results(tmp_path / "again.jsonl", seconds=(10, 50))
    result = runner.invoke(app, ["compare", f"{one},{again}", str(one)])
    assert result.exit_code == 2
    assert "BASE files form 2 runs" in result.output and "do not overlap" in result.output
