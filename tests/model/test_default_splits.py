"""Training's default splits come from the corpus: MSP-Podcast development / test1 + test2 end to end
through ``bench train`` and ``bench table1``, RAVDESS validation / test, a manifest's by name."""

import json

import pytest
import typer
from typer.testing import CliRunner

from model.commands import evaluate, table1, train
from model.corpora.base import DataError, DefaultSplits, default_splits
from model.data import open_corpus
from model.metrics import read_rows
from tests.model.corpora_fixtures import make_msp_podcast_tree, make_ravdess_tree

app = typer.Typer()
app.command("train")(train)
app.command("table1")(table1)
app.command("evaluate")(evaluate)
TINY = ["--preset", "smoke", "--epochs", "1", "--width", "16", "--heads", "2", "--depth", "1", "--crop-seconds",
        "0.3", "--eval-batch-size", "8", "--device", "cpu"]


def test_default_splits_by_name():
    assert default_splits(["train", "validation", "test"]) == DefaultSplits("train", "validation", ("test",))
    assert default_splits(["Train", "dev", "test10", "test2"]) == DefaultSplits("Train", "dev", ("test2", "test10"))
    with pytest.raises(DataError, match="no default train / development / test splits among train, test"):
        default_splits(["train", "test"])
    with pytest.raises(DataError, match="default split 'test2' has no utterances"):
        default_splits(["train", "development", "test1"], declared=DefaultSplits("train", "development",
                                                                                ("test1", "test2")))


def test_readers_declare_their_defaults(tmp_path):
    make_msp_podcast_tree(tmp_path / "msp", seconds=0.2)
    make_ravdess_tree(tmp_path / "rav", actors=range(1, 25), per_actor=1, seconds=0.1)
    assert open_corpus(f"msp-podcast:{tmp_path / 'msp'}").default_splits() == DefaultSplits(
        "train", "development", ("test1", "test2"))
    assert open_corpus(f"ravdess:{tmp_path / 'rav'}").default_splits() == DefaultSplits(
        "train", "validation", ("test",))


def test_msp_podcast_trains_with_the_defaults_and_fills_table1(tmp_path):
    root = tmp_path / "msp"
    make_msp_podcast_tree(root, seconds=0.3)
    results = tmp_path / "results.jsonl"
    done = CliRunner().invoke(app, ["train", "--corpus", f"msp-podcast:{root}", "--out", str(tmp_path / "run"),
                                    "--results", str(results), *TINY], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    rows = read_rows(results, "accuracy")
    assert [(r["split"], r["n"]) for r in rows] == [("development", 8), ("test1", 8), ("test2", 8)]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["splits"] == {"train": "train", "dev": "development", "tests": ["test1", "test2"]}
    shown = CliRunner().invoke(app, ["table1", str(results), "--format", "json"])
    assert shown.exit_code == 0, shown.output
    records = json.loads(shown.output)
    cell = next(r for r in records if (r["mechanism"], r["backbone"]) == ("SA", "logmel40"))  # smoke: 40 mels
    for column, row in zip(("Dev", "Test1", "Test2"), rows, strict=True):
        assert cell[column]["runs"] == 1
        assert cell[column]["ours"] == pytest.approx(100 * row["macro_f1"])
    # bench evaluate without --split scores the run's first test split again.
    again = CliRunner().invoke(app, ["evaluate", str(tmp_path / "run"), "--results", str(results)])
    assert again.exit_code == 0, again.output
    last = read_rows(results, "accuracy")[-1]
    assert (last["split"], last["macro_f1"], last["confusion"]) == ("test1", rows[1]["macro_f1"], rows[1]["confusion"])


def test_runs_saved_with_the_old_fixed_split_names_still_continue(tmp_path):
    from dataclasses import asdict

    from model.grid import check_resumable
    from model.train_config import resolve_config

    config = resolve_config("x", "sa", "smoke")
    assert (config.dev_split, config.test_split) == (None, None)  # the corpus's
    (tmp_path / "last.pt").write_bytes(b"")
    for saved, ok in (({"dev_split": "development", "test_split": "test"}, True), ({"test_split": "test2"}, False)):
        (tmp_path / "config.json").write_text(json.dumps({"train": {**asdict(config), **saved}}))
        if ok:
            assert check_resumable(config, tmp_path)
        else:
            with pytest.raises(ValueError, match=r"other settings \(test_split\)"):
                check_resumable(config, tmp_path)
