from typer.testing import CliRunner

from bench.cli import app


def test_every_command_group_is_composed():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("sweep", "report", "env", "verify", "plot", "compare", "train", "evaluate", "data"):
        assert command in result.output


def test_data_synth_makes_a_corpus(tmp_path):
    args = ["data", "synth", "--out", str(tmp_path / "corpus"), "--max-seconds", "3"]
    result = CliRunner().invoke(app, [*args, "--utterances", "48"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "corpus").rglob("*.wav"))) == 48
    too_few = CliRunner().invoke(app, [*args, "--utterances", "12"])
    assert too_few.exit_code == 2 and "at least 48" in too_few.output
