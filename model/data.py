"""Corpora behind one interface, audio I/O, and one-line errors for bad input.

A corpus is a set of labelled utterances in named splits. Every reader (the manifest CSV here;
MSP-Podcast and RAVDESS next) yields ``Utterance`` records; training and evaluation see nothing else.

The manifest layout, shared by the synthetic corpus and any user corpus: a CSV with columns
``path`` (relative to the CSV's folder, or absolute), ``label``, ``split``, and optionally
``speaker`` and ``transcript``. A ``corpus.json`` beside it may fix the class list and its order
(``{"classes": [...]}``); without it the classes are the labels found, sorted.

A corpus is named on the command line as ``DIR`` (holding ``manifest.csv``) or ``KIND:PATH``
(``csv:FILE``, ``synthetic:DIR``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile

from model.features import SAMPLE_RATE

REQUIRED_COLUMNS = ("path", "label", "split")
OPTIONAL_COLUMNS = ("speaker", "transcript")


class DataError(ValueError):
    """Bad input data; the message is one line naming the file (and row) at fault."""


@dataclass(frozen=True)
class Utterance:
    id: str
    path: Path
    label: str
    split: str
    speaker: str | None = None
    transcript: str | None = None
    source: str = ""  # "manifest.csv row 12", for error messages


class Corpus(Protocol):
    name: str
    classes: tuple[str, ...]

    def splits(self) -> tuple[str, ...]: ...

    def utterances(self, split: str) -> list[Utterance]: ...


class ManifestCorpus:
    """A corpus described by a manifest CSV (see the module docstring for the layout)."""

    def __init__(self, manifest: Path):
        self.manifest = Path(manifest)
        if not self.manifest.is_file():
            raise DataError(f"{self.manifest}: no such manifest file")
        self.name = self.manifest.parent.name or str(self.manifest)
        meta_path = self.manifest.parent / "corpus.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        self._utterances = list(self._read(meta.get("classes")))
        labels = sorted({u.label for u in self._utterances})
        self.classes = tuple(meta["classes"]) if "classes" in meta else tuple(labels)
        self.sample_rate = int(meta.get("sample_rate", SAMPLE_RATE))

    def _read(self, classes: list[str] | None) -> Iterator[Utterance]:
        with open(self.manifest, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            found = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in found]
            if missing:
                raise DataError(f"{self.manifest}: missing columns {', '.join(missing)} "
                                f"(expected {', '.join(REQUIRED_COLUMNS)}; found {', '.join(found) or 'none'})")
            for line, row in enumerate(reader, start=2):
                source = f"{self.manifest} row {line}"
                empty = [c for c in REQUIRED_COLUMNS if not (row.get(c) or "").strip()]
                if empty:
                    raise DataError(f"{source}: empty {', '.join(empty)}")
                label = row["label"].strip()
                if classes is not None and label not in classes:
                    raise DataError(f"{source}: unknown label {label!r}; known labels: {', '.join(classes)}")
                path = Path(row["path"].strip())
                yield Utterance(
                    id=path.stem, path=path if path.is_absolute() else self.manifest.parent / path,
                    label=label, split=row["split"].strip(), speaker=(row.get("speaker") or None),
                    transcript=row.get("transcript"), source=source,
                )

    def splits(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(u.split for u in self._utterances))

    def utterances(self, split: str) -> list[Utterance]:
        chosen = [u for u in self._utterances if u.split == split]
        if not chosen:
            raise DataError(f"{self.manifest}: split {split!r} has no utterances "
                            f"(splits present: {', '.join(self.splits()) or 'none'})")
        return chosen


CORPUS_KINDS = ("csv", "synthetic")


def open_corpus(spec: str | Path) -> ManifestCorpus:
    """``DIR``, ``csv:FILE`` or ``synthetic:DIR`` -> a corpus."""
    text = str(spec)
    kind, sep, rest = text.partition(":")
    if not sep or len(kind) == 1:  # no kind, or a Windows drive letter
        kind, rest = "synthetic", text
    if kind == "csv":
        return ManifestCorpus(Path(rest))
    if kind == "synthetic":
        path = Path(rest)
        return ManifestCorpus(path / "manifest.csv" if path.is_dir() or not path.suffix else path)
    raise DataError(f"unknown corpus kind {kind!r} in {text!r}; use DIR or one of "
                    f"{', '.join(k + ':PATH' for k in CORPUS_KINDS)}")


def load_audio(utterance: Utterance, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 samples at ``sample_rate``; a DataError naming the file and row if unreadable."""
    try:
        samples, rate = soundfile.read(utterance.path, dtype="float32", always_2d=True)
    except (OSError, RuntimeError, soundfile.LibsndfileError) as error:
        reason = "no such file" if not utterance.path.exists() else str(error).splitlines()[0]
        raise DataError(f"{utterance.source}: cannot read audio {utterance.path} ({reason})") from None
    if samples.shape[0] == 0:
        raise DataError(f"{utterance.source}: audio {utterance.path} is empty")
    mono = samples.mean(axis=1)
    if rate != sample_rate:
        from scipy.signal import resample_poly

        step = math.gcd(rate, sample_rate)
        mono = resample_poly(mono, sample_rate // step, rate // step).astype(np.float32)
    return mono


def load_split(corpus: Corpus, split: str, skip_bad_audio: bool = False,
               sample_rate: int = SAMPLE_RATE) -> tuple[list[tuple[Utterance, np.ndarray]], int]:
    """Every readable utterance of ``split`` with its samples, and how many unreadable ones were skipped."""
    loaded, skipped = [], 0
    for utterance in corpus.utterances(split):
        try:
            loaded.append((utterance, load_audio(utterance, sample_rate)))
        except DataError:
            if not skip_bad_audio:
                raise
            skipped += 1
    if not loaded:
        raise DataError(f"split {split!r} has no readable utterances ({skipped} unreadable skipped)")
    return loaded, skipped


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """16-bit PCM WAV, the format corpora ship in."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, sample_rate, subtype="PCM_16")


def write_manifest(path: Path, rows: list[dict[str, str]], classes: tuple[str, ...], **meta) -> None:
    """The manifest CSV and its ``corpus.json``, written so the reader above reads them back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS])
        writer.writeheader()
        writer.writerows(rows)
    (path.parent / "corpus.json").write_text(json.dumps({"classes": list(classes), **meta}, indent=2) + "\n")
