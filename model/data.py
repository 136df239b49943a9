"""Corpora behind one interface, and audio I/O: the one entry point the rest of the project imports.

A corpus is a set of labelled utterances in named splits. Every reader yields ``Utterance`` records
and counts what it left out, and why, in ``dropped``; training and evaluation see nothing else.

A corpus is named as ``KIND:PATH`` with optional reader options, ``KIND:PATH?name=value&...``:

- ``msp-podcast:ROOT`` (options ``keep=O,X``, ``labels=FILE``): ``model.corpora.msp_podcast``.
- ``ravdess:ROOT`` (options ``fold=1..5``, ``song=true``): ``model.corpora.ravdess``, with the
  ResLSTM-SA paper's speaker-independent folds ``RAVDESS_FOLDS``.
- ``csv:FILE`` (options ``classes=a,b``, ``merge=from:to``): a manifest CSV with columns ``path``,
  ``label``, ``split`` and optionally ``speaker`` and ``transcript`` (``model.corpora.manifest``).
- ``synthetic:DIR``, or a bare ``DIR``: the manifest ``bench data synth`` writes, ``DIR/manifest.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile

from model.corpora.base import Corpus, DataError, ListedCorpus, Utterance
from model.corpora.manifest import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, ManifestCorpus, open_manifest, write_manifest
from model.corpora.msp_podcast import MSP_CLASSES, MSP_SPLITS, MspPodcastCorpus, open_msp_podcast
from model.corpora.ravdess import RAVDESS_CLASSES, RAVDESS_FOLDS, RavdessCorpus, open_ravdess
from model.corpora.spec import format_spec, parse_spec
from model.corpora.summary import audio_seconds, summarize
from model.frontend import SAMPLE_RATE

__all__ = ["CORPUS_KINDS", "MSP_CLASSES", "MSP_SPLITS", "OPTIONAL_COLUMNS", "RAVDESS_CLASSES", "RAVDESS_FOLDS",
           "REQUIRED_COLUMNS", "Corpus", "DataError", "ListedCorpus", "ManifestCorpus", "MspPodcastCorpus",
           "RavdessCorpus", "Utterance", "audio_seconds", "format_spec", "load_audio", "load_split", "open_corpus",
           "parse_spec", "summarize", "write_manifest", "write_wav"]

# Kind -> (what its PATH names, reader).
CORPUS_KINDS: dict[str, tuple[str, Callable[[str, str, dict[str, object]], Corpus]]] = {
    "msp-podcast": ("ROOT", open_msp_podcast),
    "ravdess": ("ROOT", open_ravdess),
    "csv": ("FILE", open_manifest),
    "synthetic": ("DIR", open_manifest),
}


def _kinds() -> str:
    return ", ".join(f"{kind}:{path}" for kind, (path, _) in CORPUS_KINDS.items())


def open_corpus(spec: str | Path, **options: object) -> Corpus:
    """``KIND:PATH[?name=value&...]`` (or a bare manifest ``DIR``) -> a corpus.

    Keyword options override those in the string: ``open_corpus("ravdess:/data/RAVDESS", fold=3)``.
    """
    text = str(spec)
    kind, path, given = parse_spec(text)
    if kind not in CORPUS_KINDS:
        raise DataError(f"unknown corpus kind {kind!r} in {text!r}; use DIR or one of {_kinds()}")
    if not Path(path).exists():
        what = "file" if CORPUS_KINDS[kind][0] == "FILE" else "folder"
        raise DataError(f"{text}: no such {what} {path} (corpus kinds: {_kinds()})")
    return CORPUS_KINDS[kind][1](kind, path, {**given, **options})


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
