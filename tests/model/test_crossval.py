"""ResLSTM-SA cross-validation end to end on a RAVDESS-like fixture tree: out-of-fold coverage, pooled
UAR against scikit-learn, resumption, results rows, errors."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import recall_score
from typer.testing import CliRunner

import model.crossval_run as crossval_run
from bench.cli import app
from model.acoustic import Acoustic
from model.crossval import _batches, seed_summary
from model.data import RAVDESS_FOLDS
from model.metrics import read_rows
from tests.model.corpora_fixtures import make_ravdess_tree

FAST = ["--epochs", "2", "--hidden", "16", "--lr", "2e-2", "--batch-size", "32"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("ravdess")
    return root, make_ravdess_tree(root, per_actor=8, seconds=0.5)


def _run(root: Path, out: Path, *extra: str):
    result = CliRunner().invoke(app, ["reslstm-sa", "--corpus", f"ravdess:{root}", "--out", str(out),
                                      "--results", str(out / "results.jsonl"), *FAST, *extra])
    return result


def _fold_files(out: Path, seed: int = 0) -> dict[int, dict]:
    return {k: json.loads((out / f"seed{seed}" / f"fold{k}.json").read_text()) for k in range(1, 6)}


def test_every_utterance_gets_one_out_of_fold_prediction_and_pooled_uar_is_sklearns(tree, tmp_path):
    root, written = tree
    result = _run(root, tmp_path)
    assert result.exit_code == 0, result.output
    folds = _fold_files(tmp_path)
    by_id = {f.path.stem: f for f in written}
    ids = [i for k in folds for i in folds[k]["ids"]]
    assert sorted(ids) == sorted(by_id)  # each utterance exactly once
    for k, stored in folds.items():
        assert {by_id[i].actor for i in stored["ids"]} == set(RAVDESS_FOLDS[k - 1][0])
        assert stored["targets"] == [by_id[i].emotion - 1 for i in stored["ids"]]
    targets = [t for k in folds for t in folds[k]["targets"]]
    predictions = [p for k in folds for p in folds[k]["predictions"]]
    expected = recall_score(targets, predictions, labels=list(range(8)), average="macro", zero_division=0)
    rows = read_rows(tmp_path / "results.jsonl", "accuracy")
    pooled = [r for r in rows if r["split"] == "test"]
    assert len(pooled) == 1 and pooled[0]["uar"] == pytest.approx(expected, abs=1e-12)
    assert pooled[0]["uar"] > 0.5  # the fixture's classes are distinct tones: training must learn them
    assert (pooled[0]["system"], pooled[0]["mixer"], pooled[0]["kind"]) == ("reslstm-sa", "reslstm", "accuracy")
    assert pooled[0]["fold_uar"] == {str(k): folds[k]["uar"] for k in folds}
    per_fold = sorted((r for r in rows if r["split"] == "fold-test"), key=lambda r: r["fold"])
    assert [r["fold"] for r in per_fold] == [1, 2, 3, 4, 5]
    for row in per_fold:
        stored = folds[row["fold"]]
        assert row["uar"] == pytest.approx(recall_score(stored["targets"], stored["predictions"], labels=list(range(8)),
                                                        average="macro", zero_division=0), abs=1e-12)
    assert f"{expected:.4f}" in result.output and "0.6232" in result.output


def test_rerun_resumes_finished_folds_without_training_or_duplicate_rows(tree, tmp_path, monkeypatch):
    root, _ = tree
    assert _run(root, tmp_path).exit_code == 0
    rows_before = (tmp_path / "results.jsonl").read_text()
    fold3 = (tmp_path / "seed0" / "fold3.json").read_text()
    trained = []
    real = crossval_run.train_fold
    monkeypatch.setattr(crossval_run, "train_fold", lambda *a, **k: trained.append(a[2]) or real(*a, **k))
    monkeypatch.setattr(Acoustic, "features", lambda *a: pytest.fail("features were extracted again"))
    assert _run(root, tmp_path).exit_code == 0
    assert trained == []
    (tmp_path / "seed0" / "fold3.json").unlink()
    result = _run(root, tmp_path)
    assert result.exit_code == 0, result.output
    assert trained == [3]
    assert (tmp_path / "seed0" / "fold3.json").read_text() == fold3  # seeded per (seed, fold): same result
    assert (tmp_path / "results.jsonl").read_text() == rows_before


def test_several_seeds_and_a_subset_of_folds(tree, tmp_path):
    root, _ = tree
    result = _run(root, tmp_path, "--seeds", "0,1", "--folds", "2,5")
    assert result.exit_code == 0, result.output
    pooled = {r["seed"]: r for r in read_rows(tmp_path / "results.jsonl", "accuracy") if r["split"] == "test"}
    assert sorted(pooled) == [0, 1] and pooled[0]["folds"] == [2, 5]
    mean, std = np.mean([r["uar"] for r in pooled.values()]), np.std([r["uar"] for r in pooled.values()])
    assert f"{mean:.4f} ± {std:.4f} over 2 seed(s)" in result.output and "folds 2,5 only" in result.output


def test_other_settings_in_the_same_folder_and_bad_input_are_one_line_errors(tree, tmp_path):
    root, _ = tree
    assert _run(root, tmp_path, "--folds", "1").exit_code == 0
    changed = _run(root, tmp_path, "--folds", "1", "--epochs", "3")  # the last --epochs wins
    assert changed.exit_code == 2 and "other settings (epochs)" in changed.output
    for extra, message in ((["--seeds", "a,b"], "--seeds expects"), (["--folds", "0,6"], "folds in 1..5")):
        bad = _run(root, tmp_path / "bad", *extra)
        assert bad.exit_code == 2 and message in bad.output
    wrong = CliRunner().invoke(app, ["reslstm-sa", "--corpus", f"csv:{tmp_path}/m.csv", "--out", str(tmp_path / "x")])
    assert wrong.exit_code == 2 and "ravdess:ROOT" in wrong.output


def test_batches_never_leave_one_example_alone():
    sizes = [len(b) for b in _batches(33, 16, torch.Generator().manual_seed(0))]
    assert sizes == [16, 17] and sum(sizes) == 33


def test_seed_summary_uses_population_deviation_as_the_authors():
    mean, std, best = seed_summary([0.6, 0.7])
    assert (mean, std, best) == pytest.approx((0.65, 0.05, 0.7))
