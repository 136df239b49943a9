"""MSP-Podcast (Lotfian and Busso, 2019): consensus labels, audio and transcripts.

A release holds ``Labels/labels_consensus.csv`` (columns ``FileName, EmoClass, EmoAct, EmoVal,
EmoDom, SpkrID, Gender, Split_Set``), ``Audios/`` (the .wav files, searched recursively) and
``Transcripts/`` (one ``<stem>.txt`` per file; a missing one gives ``transcript=None``).

Classes: the 8 primary emotions A (anger), S (sadness), H (happiness), U (surprise), F (fear),
D (disgust), C (contempt), N (neutral), in that order, as in the MSP-Podcast challenge. O (other)
and X (no agreement) are dropped unless named in the option ``keep`` (``keep=O,X``), which appends
them to the classes in that order. Splits: ``Split_Set`` Train, Development, Test1 and Test2
become ``train``, ``development``, ``test1`` and ``test2`` (looked up case-insensitively); Test3's
labels are withheld, so its rows are dropped and counted. ``SpkrID`` "Unknown" gives
``speaker=None``. Every row left out (and why) is counted in ``dropped``.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import replace
from pathlib import Path

from model.corpora.base import DataError, DefaultSplits, ListedCorpus, Utterance, check_options, list_option
from model.corpora.spec import format_spec

MSP_CLASSES = ("A", "S", "H", "U", "F", "D", "C", "N")
OTHER_CLASSES = {"O": "other", "X": "no agreement"}
MSP_SPLITS = {"Train": "train", "Development": "development", "Test1": "test1", "Test2": "test2"}
WITHHELD_SPLITS = ("Test3",)
COLUMNS = ("FileName", "EmoClass", "SpkrID", "Split_Set")
LABELS = Path("Labels") / "labels_consensus.csv"
OPTIONS = ("keep", "labels")


def _files(folder: Path, suffix: str) -> dict[str, str]:
    """Every file under ``folder`` ending in ``suffix``, by name; one directory walk, no per-file stat.
    Paths stay strings here: building 10^5 ``Path`` objects costs seconds."""
    found: dict[str, str] = {}
    for parent, _, names in os.walk(folder):
        for name in names:
            if name.lower().endswith(suffix):
                found.setdefault(name, os.path.join(parent, name))
    return found


class MspPodcastCorpus(ListedCorpus):
    """The labelled rows of an MSP-Podcast release under ``root`` (see the module docstring)."""

    # The attention paper's Table 1: best epoch on Development, scored on Test1 and Test2.
    DEFAULT_SPLITS = DefaultSplits("train", "development", ("test1", "test2"))

    def __init__(self, root: Path, keep: tuple[str, ...] = (), labels: Path = LABELS):
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"{root}: no such MSP-Podcast folder")
        bad = [c for c in keep if c not in OTHER_CLASSES]
        if bad:
            raise DataError(f"msp-podcast: keep takes O and/or X, got {bad[0]!r}")
        self.root, self.labels = root, root / labels
        if not self.labels.is_file():
            raise DataError(f"{root}: no {labels} (expected an MSP-Podcast release: Labels/, Audios/, Transcripts/)")
        if not (root / "Audios").is_dir():
            raise DataError(f"{root}: no Audios/ folder")
        self._transcripts = _files(root / "Transcripts", ".txt")
        self._read_splits: set[str] = set()
        classes = MSP_CLASSES + tuple(c for c in OTHER_CLASSES if c in keep)
        dropped: Counter[str] = Counter()
        utterances = self._read(classes, _files(root / "Audios", ".wav"), dropped)
        spec = format_spec("msp-podcast", root, {"keep": keep or None,
                                                 "labels": labels if Path(labels) != LABELS else None})
        super().__init__("msp-podcast", spec, classes, utterances, dropped, str(self.labels))

    def _read(self, classes: tuple[str, ...], audio: dict[str, str], dropped: Counter[str]) -> list[Utterance]:
        kept, seen = [], set()
        with open(self.labels, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{self.labels}: missing columns {', '.join(missing)} "
                                f"(found {', '.join(reader.fieldnames or []) or 'none'})")
            for line, row in enumerate(reader, start=2):
                name, emo = (row["FileName"] or "").strip(), (row["EmoClass"] or "").strip()
                split = (row["Split_Set"] or "").strip()
                name = name if name.lower().endswith(".wav") else f"{name}.wav"
                reason = self._drop_reason(name, emo, split, classes, seen, audio)
                if reason:
                    dropped[reason] += 1
                    continue
                seen.add(name)
                speaker = (row["SpkrID"] or "").strip()
                kept.append(Utterance(id=name[:-4], path=Path(audio[name]), label=emo, split=MSP_SPLITS[split],
                                      speaker=None if speaker.lower() in ("", "unknown") else speaker,
                                      source=f"{self.labels} row {line}"))
        return kept

    @staticmethod
    def _drop_reason(name: str, emo: str, split: str, classes: tuple[str, ...], seen: set[str],
                     audio: dict[str, str]) -> str:
        if split in WITHHELD_SPLITS:
            return f"{split} (labels withheld)"
        if split not in MSP_SPLITS:
            return f"unknown Split_Set {split!r}"
        if emo not in classes:
            if emo in OTHER_CLASSES:
                return f"EmoClass {emo} ({OTHER_CLASSES[emo]}; keep={emo} keeps it)"
            return f"unknown EmoClass {emo!r}"
        if name in seen:
            return "duplicate FileName"
        if name not in audio:
            return "audio file missing from Audios/"
        return ""

    def utterances(self, split: str) -> list[Utterance]:
        """The split's utterances with their transcripts, read from ``Transcripts/`` on first request."""
        found = super().utterances(split)
        name = found[0].split
        if name not in self._read_splits:
            self._by_split[name] = found = [replace(u, transcript=self._transcript(u.id)) for u in found]
            self._read_splits.add(name)
        return list(found)

    def _transcript(self, stem: str) -> str | None:
        path = self._transcripts.get(f"{stem}.txt")
        if path is None:
            return None
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip() or None


def open_msp_podcast(kind: str, path: str, options: dict[str, object]) -> MspPodcastCorpus:
    """``msp-podcast:ROOT`` with options ``keep`` (O, X or O,X) and ``labels`` (a CSV relative to ROOT)."""
    check_options("msp-podcast", options, OPTIONS)
    keep = list_option(options.get("keep", ()))
    return MspPodcastCorpus(Path(path), keep, Path(str(options.get("labels", LABELS))))
