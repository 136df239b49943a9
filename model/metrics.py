"""Classification metrics of the paper (macro F-score, section 4.4) and the accuracy rows results files hold.

- macro-F1: the unweighted mean of per-class F1 over every class of the corpus; a class with no
  true and no predicted example scores 0 (scikit-learn's ``zero_division=0``), so missing a class
  is never rewarded.
- UAR: unweighted average recall, i.e. the macro mean of per-class recall.
- accuracy: the fraction classified correctly.
- confusion: ``confusion[i][j]`` counts true class i predicted as j.

Accuracy rows are JSON lines with ``"kind": "accuracy"``; the efficiency harness writes ``cell``
and ``header`` rows into the same kind of file, so readers select rows by kind.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

from bench.identity import code_identity


@dataclass
class Scores:
    macro_f1: float
    uar: float
    accuracy: float
    per_class_f1: dict[str, float]
    confusion: list[list[int]]
    n: int


def scores(targets: list[int] | np.ndarray, predictions: list[int] | np.ndarray,
           classes: tuple[str, ...]) -> Scores:
    """Every metric over ``classes`` (indices 0..C-1), whether or not each class occurs."""
    targets, predictions = np.asarray(targets), np.asarray(predictions)
    if targets.shape != predictions.shape or targets.ndim != 1 or len(targets) == 0:
        raise ValueError(f"expected two equal non-empty 1-D label arrays; got shapes {targets.shape} "
                         f"and {predictions.shape}")
    labels = list(range(len(classes)))
    out_of_range = set(np.unique(np.concatenate([targets, predictions])).tolist()) - set(labels)
    if out_of_range:
        raise ValueError(f"labels must be class indices 0..{len(classes) - 1}; got {sorted(out_of_range)}")
    per_class = f1_score(targets, predictions, labels=labels, average=None, zero_division=0)
    return Scores(
        macro_f1=float(per_class.mean()),
        uar=float(recall_score(targets, predictions, labels=labels, average="macro", zero_division=0)),
        accuracy=float(accuracy_score(targets, predictions)),
        per_class_f1={name: float(f) for name, f in zip(classes, per_class, strict=True)},
        confusion=confusion_matrix(targets, predictions, labels=labels).tolist(),
        n=len(targets),
    )


@dataclass
class AccuracyRow:
    """One evaluation of one trained model on one split."""

    mixer: str
    kernel: str
    speech_encoder: str
    text_encoder: str
    corpus: str
    split: str
    macro_f1: float
    uar: float
    accuracy: float
    per_class_f1: dict[str, float]
    confusion: list[list[int]]
    n: int
    params: int
    depth: int
    width: int
    seed: int
    epochs: int
    best_epoch: int
    run_dir: str
    device: str
    fusion: str = "concat"  # concat: the paper's U = [S; E] + mixer stack; gat: model.systems.gat_fusion
    host: str = field(default_factory=socket.gethostname)
    timestamp: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    # The code that computed the scores (bench.identity), as every results header records it.
    mixbench_version: str | None = field(default_factory=lambda: code_identity()["mixbench_version"])
    git_commit: str | None = field(default_factory=lambda: code_identity()["git_commit"])
    git_dirty: bool | None = field(default_factory=lambda: code_identity()["git_dirty"])
    source_sha256: str = field(default_factory=lambda: code_identity()["source_sha256"])
    kind: str = "accuracy"


def append_row(path: Path, row: dict | AccuracyRow) -> None:
    """Append one JSON line, flushed and fsynced; a torn last line left by a crash is cut first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    obj = asdict(row) if isinstance(row, AccuracyRow) else row
    line = json.dumps(obj, allow_nan=False) + "\n"
    if path.exists() and path.stat().st_size:
        with open(path, "r+b") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a line torn by a crash: cut it, as bench.results does
                f.seek(0)
                f.truncate(f.read().rfind(b"\n") + 1)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_rows(path: Path, kind: str) -> list[dict]:
    """Rows of ``kind``; rows of other kinds (cells, headers) and torn or blank lines are skipped."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict) and obj.get("kind") == kind:
                rows.append(obj)
    return rows
