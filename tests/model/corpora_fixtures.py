"""Fixture trees laid out like the real corpora, written by our code for tests (no downloads).

``make_ravdess_tree`` writes ``Actor_XX/MM-VV-EE-II-SS-RR-AA.wav`` files as the RAVDESS audio
release names them; ``make_msp_podcast_tree`` writes ``Labels/labels_consensus.csv``, ``Audios/`` and
``Transcripts/`` as MSP-Podcast ships them. The audio is tiny (0.5 s at 16 kHz by default) but not
empty of signal: each class is a harmonic tone with its own pitch and loudness, shifted a little per
speaker, plus noise, so a classifier trained on a fixture can beat chance (5-fold CV smoke tests).
Both return what they wrote, so tests derive their expectations from it, not from the readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.data import write_wav

RAVDESS_EMOTIONS = 8  # codes 01..08: neutral, calm, happy, sad, angry, fearful, disgust, surprised
RAVDESS_SONG_EMOTIONS = 6  # song has no disgust or surprised
MSP_CLASSES = ("A", "S", "H", "U", "F", "D", "C", "N")
MSP_SPLITS = ("Train", "Development", "Test1", "Test2")


@dataclass(frozen=True)
class RavdessFile:
    path: Path
    actor: int
    emotion: int  # 1..8
    song: bool


def tone(seconds: float, label: int, speaker: int, seed: int, sample_rate: int = 16_000) -> np.ndarray:
    """A class-dependent harmonic tone (pitch and loudness by ``label``, shifted by ``speaker``), plus noise."""
    rng = np.random.default_rng([seed, label, speaker])
    t = np.arange(max(int(seconds * sample_rate), 1)) / sample_rate
    f0 = 110.0 * 2 ** (label / 4) * (1 + 0.03 * (speaker % 5 - 2))  # a major third apart per class
    wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3))
    gain = 0.05 + 0.03 * (label % 4)
    return (gain * wave + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def _speech_combos() -> list[tuple[int, int, int, int]]:
    """RAVDESS's 60 speech recordings per actor as (emotion, intensity, statement, repetition), ordered
    round-robin over emotions so the first 8 cover every emotion (neutral has normal intensity only)."""
    per_emotion = [[(e, i, s, r) for i in ((1,) if e == 1 else (1, 2)) for s in (1, 2) for r in (1, 2)]
                   for e in range(1, RAVDESS_EMOTIONS + 1)]
    return [group[k] for k in range(8) for group in per_emotion if k < len(group)]


def ravdess_name(emotion: int, actor: int, intensity: int = 1, statement: int = 1, repetition: int = 1,
                 song: bool = False) -> str:
    """``03-VV-EE-II-SS-RR-AA.wav``: audio-only modality, speech (01) or song (02)."""
    fields = (3, 2 if song else 1, emotion, intensity, statement, repetition, actor)
    return "-".join(f"{v:02d}" for v in fields) + ".wav"


def make_ravdess_tree(root: Path, actors=range(1, 25), per_actor: int = 8, seconds: float = 0.5,
                      song_per_actor: int = 0, seed: int = 0, sample_rate: int = 16_000) -> list[RavdessFile]:
    """Write ``per_actor`` speech files (at most 60; the first 8 cover the 8 emotions) and
    ``song_per_actor`` song files (at most 6, one per song emotion) under ``root/Actor_XX/``."""
    if not 1 <= per_actor <= 60 or not 0 <= song_per_actor <= RAVDESS_SONG_EMOTIONS:
        raise ValueError(f"expected 1 <= per_actor <= 60 and 0 <= song_per_actor <= 6, got {per_actor}, "
                         f"{song_per_actor}")
    root, written = Path(root), []
    combos = _speech_combos()[:per_actor]
    for actor in actors:
        folder = root / f"Actor_{actor:02d}"
        for emotion, intensity, statement, repetition in combos:
            path = folder / ravdess_name(emotion, actor, intensity, statement, repetition)
            write_wav(path, tone(seconds, emotion - 1, actor, seed + intensity * 10 + statement * 3 + repetition,
                                 sample_rate), sample_rate)
            written.append(RavdessFile(path, actor, emotion, song=False))
        for emotion in range(1, song_per_actor + 1):
            path = folder / ravdess_name(emotion, actor, song=True)
            write_wav(path, tone(seconds, emotion - 1, actor, seed + 1000, sample_rate), sample_rate)
            written.append(RavdessFile(path, actor, emotion, song=True))
    return written


@dataclass(frozen=True)
class MspRow:
    file_name: str
    emo_class: str
    speaker: str  # a number, or "Unknown"
    split: str
    transcript: str | None  # None: no transcript file written
    seconds: float


def make_msp_podcast_tree(root: Path, per_class: dict[str, int] | None = None, other: int = 2,
                          no_agreement: int = 2, test3: int = 3, speakers: int = 3, unknown_speaker_every: int = 5,
                          missing_transcript_every: int = 4, seconds: float = 0.5,
                          seed: int = 0) -> list[MspRow]:
    """Write an MSP-Podcast-like tree and return its label rows (every row has an audio file).

    Per split in ``MSP_SPLITS``: ``per_class[split]`` rows of each of the 8 classes (default 2 for
    Train, 1 otherwise), ``other`` rows of class O and ``no_agreement`` of class X; plus ``test3``
    Test3 rows (labels withheld: EmoClass empty). Speakers are numbered per split so splits are
    speaker-independent; every ``unknown_speaker_every``-th row has SpkrID "Unknown" and every
    ``missing_transcript_every``-th row no transcript file. Durations vary: 0.5x to 1.5x ``seconds``.
    """
    root = Path(root)
    per_class = {"Train": 2, **{s: 1 for s in MSP_SPLITS[1:]}, **(per_class or {})}
    plan = [(split, c) for split in MSP_SPLITS for c in MSP_CLASSES for _ in range(per_class[split])]
    plan += [(split, c) for split in MSP_SPLITS for c, n in (("O", other), ("X", no_agreement)) for _ in range(n)]
    plan += [("Test3", "")] * test3
    rows = []
    for i, (split, emo) in enumerate(plan):
        name = f"MSP-PODCAST_{i // 10 + 1:04d}_{i % 10 + 1:04d}.wav"
        split_index = (MSP_SPLITS + ("Test3",)).index(split)
        speaker = "Unknown" if i % unknown_speaker_every == 0 else str(100 * split_index + i % speakers)
        transcript = None if i % missing_transcript_every == 0 else f"utterance {i} of class {emo or 'unknown'}"
        duration = seconds * (0.5 + (i % 3) / 2)
        label = MSP_CLASSES.index(emo) if emo in MSP_CLASSES else 0
        wave = tone(duration, label, i % speakers, seed)
        write_wav(root / "Audios" / name, wave)
        if transcript is not None:
            (root / "Transcripts").mkdir(parents=True, exist_ok=True)
            (root / "Transcripts" / (Path(name).stem + ".txt")).write_text(transcript + "\n", encoding="utf-8")
        rows.append(MspRow(name, emo, speaker, split, transcript, len(wave) / 16_000))
    _write_labels(root / "Labels" / "labels_consensus.csv", rows)
    return rows


def _write_labels(path: Path, rows: list[MspRow]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set"]
    for i, r in enumerate(rows):
        gender = "Unknown" if r.speaker == "Unknown" else ("Female" if i % 2 else "Male")
        dims = ",,," if r.split == "Test3" else f"{3 + i % 3:.1f},{4.0 - i % 2:.1f},{3.5:.1f},"
        lines.append(f"{r.file_name},{r.emo_class},{dims}{r.speaker},{gender},{r.split}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
