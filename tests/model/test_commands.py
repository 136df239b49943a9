"""The model commands through typer's CliRunner, composed into our own app as bench/cli.py composes them."""

import json
import shutil

import pytest
import torch
import typer
from typer.testing import CliRunner

from bench.identity import FIELDS, code_identity
from model.commands import evaluate, train
from model.data_commands import data_app
from model.metrics import read_rows

app = typer.Typer()
app.command("train")(train)
app.command("evaluate")(evaluate)
app.add_typer(data_app, name="data")
runner = CliRunner()

TINY = ["--preset", "smoke", "--width", "16", "--heads", "2", "--depth", "1", "--crop-seconds", "0.5",
        "--eval-batch-size", "8", "--device", "cpu", "--epochs", "1"]


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    result = _invoke("train", "--corpus", tiny_corpus, "--out", root / "run", "--results", root / "results.jsonl",
                     *TINY)
    assert result.exit_code == 0, result.output
    return root


def test_train_writes_the_code_identity_into_config_rows_and_checkpoints(trained):
    """The record results headers carry (bench.identity), in RUN/config.json, every accuracy row and both
    checkpoints."""
    code = code_identity()
    config = json.loads((trained / "run" / "config.json").read_text())
    assert {name: config[name] for name in FIELDS} == code and "earlier_code" not in config
    for row in read_rows(trained / "results.jsonl", "accuracy"):
        assert {name: row[name] for name in FIELDS} == code
    for name in ("best.pt", "last.pt"):
        state = torch.load(trained / "run" / name, weights_only=True)
        assert {field: state[field] for field in FIELDS} == code


def test_synth_writes_a_corpus(tmp_path):
    result = _invoke("data", "synth", "--out", tmp_path, "--utterances", 48, "--min-seconds", 0.3,
                     "--max-seconds", 0.4, "--seed", 9)
    assert result.exit_code == 0, result.output
    assert "48 utterances" in result.output
    assert len((tmp_path / "manifest.csv").read_text().splitlines()) == 49
    assert json.loads((tmp_path / "corpus.json").read_text())["seed"] == 9


def test_train_writes_the_run_folder_and_results_rows(trained):
    run = trained / "run"
    assert {"config.json", "best.pt", "last.pt", "train.log", "metrics.jsonl"} <= {p.name for p in run.iterdir()}
    for name in ("best.pt", "last.pt"):
        assert isinstance(torch.load(run / name, weights_only=True), dict)
    config = json.loads((run / "config.json").read_text())
    assert config["depth"] == 1 and config["kernel"] == "sdpa" and config["train"]["epochs"] == 1
    assert "trainable parameters" in (run / "train.log").read_text()
    rows = read_rows(trained / "results.jsonl", "accuracy")
    assert [r["split"] for r in rows] == ["development", "test"]
    assert rows[1]["params"] == config["params"] and rows[1]["mixer"] == "sa" and rows[1]["epochs"] == 1
    splits = [(r["kind"], r["split"]) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]
    assert splits == [("epoch", "train"), ("epoch", "development"), ("final", "development"), ("final", "test")]


def test_evaluate_reproduces_the_final_scores(trained):
    result = _invoke("evaluate", trained / "run", "--split", "development", "--results", trained / "eval.jsonl",
                     "--batch-size", 1)
    assert result.exit_code == 0, result.output
    row = read_rows(trained / "eval.jsonl", "accuracy")[0]
    final = read_rows(trained / "results.jsonl", "accuracy")[0]
    # Batch 1 here, batch 8 in training: the same predictions (equal-length groups are mixed unpadded).
    assert row["confusion"] == final["confusion"] and row["macro_f1"] == final["macro_f1"]


def test_user_errors_are_one_line(tiny_corpus, trained, tmp_path):
    cases = [
        (["train", "--out", tmp_path / "a"], "--corpus is required"),
        (["train", "--corpus", tiny_corpus, "--out", trained / "run", *TINY], "already holds a training run"),
        (["train", "--out", trained / "run", "--resume", "--epochs", "3"], "drop --epochs"),
        (["train", "--out", tmp_path / "none", "--resume"], "nothing to resume"),
        (["train", "--corpus", tiny_corpus, "--out", tmp_path / "b", "--mixer", "nope"], "unknown mixer 'nope'"),
        (["evaluate", tmp_path], "is not a training run"),
        (["evaluate", trained / "run", "--split", "Test2"], "split 'Test2' has no utterances"),
        (["data", "synth", "--out", tmp_path / "c", "--utterances", 10], "at least 48 utterances"),
    ]
    for args, message in cases:
        result = _invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.output.split()), (args, result.output)


def test_bad_audio_stops_or_is_skipped_and_counted(tiny_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    (corpus / "wav/utt00002.wav").unlink()
    stopped = _invoke("train", "--corpus", corpus, "--out", tmp_path / "a", *TINY)
    assert stopped.exit_code == 2
    assert "row 4: cannot read audio" in " ".join(stopped.output.split())
    skipped = _invoke("train", "--corpus", corpus, "--out", tmp_path / "b", "--results", tmp_path / "r.jsonl",
                      "--skip-bad-audio", *TINY)
    assert skipped.exit_code == 0, skipped.output
    assert "train: 31 utterances (1 unreadable skipped)" in (tmp_path / "b/train.log").read_text()
