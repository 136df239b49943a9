"""RAVDESS (Livingstone and Russo, 2018): labels from file names, and the ResLSTM-SA paper's folds.

Every file is named ``MM-VV-EE-II-SS-RR-AA.wav``: modality (03 = audio-only), vocal channel
(01 = speech, 02 = song), emotion (01..08: neutral, calm, happy, sad, angry, fearful, disgust,
surprised), intensity (01 normal, 02 strong), statement (01 "Kids are talking by the door",
02 "Dogs are sitting by the door"), repetition (01, 02) and actor (01..24). Files are found
recursively under the root (the release's ``Actor_XX`` folders). Song files are dropped unless
``song=true``; names that break the convention are dropped and counted by reason.

Splits are speaker-independent: fold k (1..5, option ``fold``, default 1) tests on the actors
``RAVDESS_FOLDS[k-1][0]``, validates on ``RAVDESS_FOLDS[k-1][1]`` and trains on the other actors,
as in the ResLSTM-SA paper; the 5 test sets partition the 24 actors.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from model.corpora.base import DataError, DefaultSplits, ListedCorpus, Utterance, bool_option, check_options, int_option
from model.corpora.spec import format_spec

RAVDESS_CLASSES = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
# (test actors, validation actors) per fold; training actors are the remaining ones.
RAVDESS_FOLDS: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = (
    ((2, 5, 14, 15, 16), (3, 6)),
    ((3, 6, 7, 13, 18), (10, 11)),
    ((10, 11, 12, 19, 20), (8, 17)),
    ((8, 17, 21, 23, 24), (1, 14)),
    ((1, 4, 9, 22), (2, 5)),
)
ACTORS = tuple(range(1, 25))
SPLITS = ("train", "validation", "test")
STATEMENTS = {1: "Kids are talking by the door.", 2: "Dogs are sitting by the door."}
OPTIONS = ("fold", "song")
# Field index -> (name, allowed codes) for the fields checked beyond the layout itself.
FIELDS = ((2, "emotion", range(1, 9)), (3, "intensity", range(1, 3)), (4, "statement", range(1, 3)),
          (5, "repetition", range(1, 3)), (6, "actor", range(1, 25)))


def fold_split(fold: int, actor: int) -> str:
    """The split of ``actor`` in ``fold`` (1-based)."""
    test, validation = RAVDESS_FOLDS[fold - 1]
    return "test" if actor in test else "validation" if actor in validation else "train"


def parse_name(stem: str, song: bool) -> tuple[tuple[int, ...] | None, str]:
    """A file stem -> (its 7 codes, "") or (None, the reason it is dropped)."""
    parts = stem.split("-")
    if len(parts) != 7 or not all(len(p) == 2 and p.isdigit() for p in parts):
        return None, "name not MM-VV-EE-II-SS-RR-AA"
    codes = tuple(int(p) for p in parts)
    if codes[0] != 3:
        return None, "modality not 03 (audio-only)"
    if codes[1] not in (1, 2):
        return None, "vocal channel not 01 (speech) or 02 (song)"
    for index, name, allowed in FIELDS:
        if codes[index] not in allowed:
            return None, f"{name} not {allowed.start:02d}-{allowed.stop - 1:02d}"
    if codes[1] == 2 and not song:
        return None, "song (vocal channel 02; song=true keeps it)"
    return codes, ""


class RavdessCorpus(ListedCorpus):
    """The RAVDESS files under ``root`` in fold ``fold``'s train, validation and test splits."""

    DEFAULT_SPLITS = DefaultSplits(*SPLITS[:2], SPLITS[2:])

    def __init__(self, root: Path, fold: int = 1, song: bool = False):
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"{root}: no such RAVDESS folder")
        if not 1 <= fold <= len(RAVDESS_FOLDS):
            raise DataError(f"ravdess: fold must be 1..{len(RAVDESS_FOLDS)}, got {fold}")
        self.root, self.fold, self.song = root, fold, song
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())
        if not files:
            raise DataError(f"{root}: no .wav files (expected RAVDESS's Actor_XX/MM-VV-EE-II-SS-RR-AA.wav)")
        dropped: Counter[str] = Counter()
        seen: set[str] = set()
        kept = []
        for path in files:
            codes, reason = parse_name(path.stem, song)
            if codes is None:
                dropped[reason] += 1
            elif path.stem in seen:
                dropped["duplicate file name"] += 1
            else:
                seen.add(path.stem)
                kept.append(self._utterance(path, codes))
        if not kept:
            raise DataError(f"{root}: no RAVDESS files kept of {len(files)} .wav files "
                            f"(dropped: {', '.join(f'{n} {r}' for r, n in dropped.items())})")
        kept.sort(key=lambda u: SPLITS.index(u.split))  # splits in the order train, validation, test
        spec = format_spec("ravdess", root, {"fold": fold, "song": True if song else None})
        super().__init__(f"ravdess-fold{fold}", spec, RAVDESS_CLASSES, kept, dropped, f"{root} (fold {fold})")

    def _utterance(self, path: Path, codes: tuple[int, ...]) -> Utterance:
        _, _, emotion, _, statement, _, actor = codes
        return Utterance(id=path.stem, path=path, label=RAVDESS_CLASSES[emotion - 1],
                         split=fold_split(self.fold, actor), speaker=str(actor),
                         transcript=STATEMENTS[statement], source=str(path))


def open_ravdess(kind: str, path: str, options: dict[str, object]) -> RavdessCorpus:
    """``ravdess:ROOT`` with options ``fold`` (1..5, default 1) and ``song`` (default false)."""
    check_options("ravdess", options, OPTIONS)
    fold = int_option("ravdess", "fold", options.get("fold", 1), 1, len(RAVDESS_FOLDS))
    return RavdessCorpus(Path(path), fold, bool_option("ravdess", "song", options.get("song", False)))
