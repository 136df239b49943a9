"""One error style across the CLI: every user mistake, in harness and model commands alike and in click's own
parsing, is one stderr line starting ``bench: error: ``, with exit code 2."""

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.errors import PREFIX
from model.__main__ import app as model_app

runner = CliRunner()

MISTAKES = {
    "sweep-dtype": "sweep --dtype fp8",
    "sweep-not-a-number": "sweep --reps abc",
    "sweep-unknown-option": "sweep --nosuch",
    "report-missing-file": "report {tmp}/none.jsonl",
    "report-bad-choice": "report --format xml {tmp}/none.jsonl",
    "compare-missing-file": "compare {tmp}/a.jsonl {tmp}/b.jsonl",
    "plot-missing-file": "plot {tmp}/none.jsonl",
    "verify-unknown-mixer": "verify --mixers nope --no-interpret",
    "env-device": "env --device tpu",
    "train-no-corpus": "train --out {tmp}/run",
    "train-missing-out": "train --corpus {tmp}",
    "train-unknown-mixer": "train --out {tmp}/run --corpus {tmp} --mixer nope",
    "evaluate-not-a-run": "evaluate {tmp}",
    "table1-missing-file": "table1 {tmp}/none.jsonl",
    "data-synth-too-few": "data synth --out {tmp}/corpus --utterances 3",
    "data-summary-kind": "data summary nosuch:x",
    "data-unknown-command": "data nosuch",
    "features-verify-not-a-cache": "features verify {tmp}",
    "reslstm-sa-seeds": "reslstm-sa --corpus ravdess:x --out {tmp}/cv --seeds a",
    "unknown-command": "nosuch",
}


@pytest.mark.parametrize("command", MISTAKES.values(), ids=MISTAKES.keys())
def test_every_user_mistake_is_one_line_in_one_style(tmp_path, command):
    result = runner.invoke(app, command.format(tmp=tmp_path).split())
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX), result.stderr


def test_python_m_model_speaks_the_same_way(tmp_path):
    for command in (["train", "--out", str(tmp_path)], ["train", "--corpus", str(tmp_path)]):
        result = runner.invoke(model_app, command)
        assert result.exit_code == 2 and result.stderr.startswith(PREFIX), result.output


def test_click_errors_point_to_the_command_help():
    result = runner.invoke(app, ["sweep", "--reps", "abc"])
    assert "--reps" in result.stderr and result.stderr.rstrip().endswith("sweep --help)")


def test_no_arguments_still_prints_the_help():
    result = runner.invoke(app, [])
    assert result.exit_code == 2 and "Usage" in result.output and PREFIX not in result.output
