"""Metrics against hand-computed cases, and results rows that share files with the harness's rows."""

import json

import pytest

from model.metrics import AccuracyRow, append_row, read_rows, scores

CLASSES = ("a", "b", "c")


def test_hand_computed_three_class_case():
    # true:      a a a b b c
    # predicted: a a b b c c
    # a: tp 2, fp 0, fn 1 -> P 1, R 2/3, F1 0.8
    # b: tp 1, fp 1, fn 1 -> P 1/2, R 1/2, F1 0.5
    # c: tp 1, fp 1, fn 0 -> P 1/2, R 1, F1 2/3
    s = scores([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], CLASSES)
    assert s.per_class_f1 == pytest.approx({"a": 0.8, "b": 0.5, "c": 2 / 3}, abs=1e-12)
    assert s.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3, abs=1e-12)
    assert s.uar == pytest.approx((2 / 3 + 1 / 2 + 1) / 3, abs=1e-12)
    assert s.accuracy == pytest.approx(4 / 6, abs=1e-12)
    assert s.confusion == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert s.n == 6


def test_absent_class_counts_as_zero_not_skipped():
    # Class c never occurs nor is predicted: F1 0 by convention, so the macro mean is over 3 classes.
    s = scores([0, 1], [0, 1], CLASSES)
    assert s.per_class_f1["c"] == 0.0
    assert s.macro_f1 == pytest.approx(2 / 3, abs=1e-12)
    assert s.accuracy == 1.0


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="two equal non-empty"):
        scores([0, 1], [0], CLASSES)
    with pytest.raises(ValueError, match=r"class indices 0..2; got \[3\]"):
        scores([0, 3], [0, 1], CLASSES)


def _row(**fields) -> AccuracyRow:
    s = scores([0, 1, 2], [0, 1, 1], CLASSES)
    return AccuracyRow(mixer="sa", kernel="sdpa", speech_encoder="logmel40", text_encoder="none", corpus="synth",
                       split="test", macro_f1=s.macro_f1, uar=s.uar, accuracy=s.accuracy,
                       per_class_f1=s.per_class_f1, confusion=s.confusion, n=s.n, params=10, depth=1, width=8,
                       seed=0, epochs=1, best_epoch=1, run_dir="run", device="cpu", **fields)


def test_rows_share_a_file_with_other_kinds(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"kind": "header", "torch": "2.13"}) + "\n"
                    + json.dumps({"kind": "cell", "mixer": "sa", "median_ms": 1.0}) + "\n"
                    + '{"kind": "accuracy", "mixer": "to')  # torn by a crash
    append_row(path, _row())
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)  # the torn line was cut
    rows = read_rows(path, "accuracy")
    assert len(rows) == 1 and rows[0]["kind"] == "accuracy" and rows[0]["macro_f1"] == pytest.approx(5 / 9)
    assert read_rows(path, "cell")[0]["median_ms"] == 1.0
    assert {"mixer", "kernel", "speech_encoder", "corpus", "split", "macro_f1", "uar", "accuracy", "per_class_f1",
            "confusion", "params", "seed", "epochs", "timestamp"} <= set(rows[0])
