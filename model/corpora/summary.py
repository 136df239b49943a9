"""What a corpus holds: utterances per split and class, hours of audio, speakers, and what was dropped.

Durations come from each file's header (frames / sample rate, as ``soundfile.info`` gives), nothing is
decoded.
A file whose header cannot be read counts as ``unreadable`` and adds no duration.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import soundfile

from model.corpora.base import Corpus


def audio_seconds(path: Path) -> float | None:
    """The file's duration from its header, or None if it cannot be read."""
    # Opening reads the header only; soundfile.info does the same plus format strings, 1.5x slower
    # (measured: 130 against 195 us per file, 5,000 WAVs, load average 7.7 on 2 cores).
    try:
        with soundfile.SoundFile(str(path)) as f:
            return f.frames / f.samplerate if f.samplerate else None
    except (OSError, RuntimeError, soundfile.LibsndfileError):
        return None


def summarize(corpus: Corpus, on_file: Callable[[], None] | None = None) -> dict:
    """A JSON-ready summary; ``on_file`` is called after each file's duration is read (progress)."""
    by_split, hours_by_split, speakers_by_split, by_split_class = {}, {}, {}, {}
    by_class: Counter[str] = Counter()
    speakers: set[str] = set()
    unknown_speaker = unreadable = 0
    for split in corpus.splits():
        utterances = corpus.utterances(split)
        seconds = 0.0
        for u in utterances:
            duration = audio_seconds(u.path)
            unreadable += duration is None
            seconds += duration or 0.0
            if on_file is not None:
                on_file()
        known = {u.speaker for u in utterances if u.speaker is not None}
        unknown_speaker += sum(u.speaker is None for u in utterances)
        counts = Counter(u.label for u in utterances)
        by_class.update(counts)
        by_split_class[split] = {c: counts.get(c, 0) for c in corpus.classes}
        by_split[split], hours_by_split[split], speakers_by_split[split] = len(utterances), seconds / 3600, len(known)
        speakers |= known
    return {
        "corpus": corpus.name, "spec": corpus.spec, "classes": list(corpus.classes),
        "utterances": sum(by_split.values()), "by_split": by_split,
        "by_class": {c: by_class.get(c, 0) for c in corpus.classes}, "by_split_class": by_split_class,
        "hours": sum(hours_by_split.values()), "hours_by_split": hours_by_split,
        "speakers": len(speakers), "speakers_by_split": speakers_by_split,
        "unknown_speaker_utterances": unknown_speaker, "unreadable": unreadable,
        "dropped": dict(corpus.dropped),
    }


def count_files(corpus: Corpus) -> int:
    """Utterances over all splits: the total a progress bar counts to."""
    return sum(len(corpus.utterances(split)) for split in corpus.splits())
