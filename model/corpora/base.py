"""What every corpus reader yields: ``Utterance`` records in named splits, and what it dropped and why."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

VALIDATION_NAMES = {"development", "validation"}
DEV_NAMES = ("development", "validation", "dev")  # a development split's names, in order of preference


@dataclass(frozen=True)
class DefaultSplits:
    """The splits training uses when none are given: it fits on ``train``, picks its best epoch on ``dev``
    and scores the best checkpoint on each of ``tests`` (MSP-Podcast: Test1 and Test2, as the attention
    paper's Table 1)."""

    train: str
    dev: str
    tests: tuple[str, ...]


def default_splits(names: Iterable[str], where: str = "corpus",
                   declared: DefaultSplits | None = None) -> DefaultSplits:
    """``declared`` (a reader's own) when given, else by name from the splits present: ``train``; the
    first of development / validation / dev; ``test``, or else every ``test<N>`` in order. Names match
    case-insensitively; a DataError names the splits present when one is missing."""
    present = list(names)
    folded = {name.casefold(): name for name in present}
    if declared is not None:
        wanted = [declared.train, declared.dev, *declared.tests]
        missing = [name for name in wanted if name.casefold() not in folded]
        if missing:
            raise DataError(f"{where}: default split {missing[0]!r} has no utterances "
                            f"(splits present: {', '.join(present) or 'none'})")
        return declared
    tests = [folded["test"]] if "test" in folded else sorted(
        (n for n in present if n.casefold().startswith("test") and n[4:].isdigit()), key=lambda n: int(n[4:]))
    dev = next((folded[n] for n in DEV_NAMES if n in folded), None)
    if "train" not in folded or dev is None or not tests:
        raise DataError(f"{where}: no default train / development / test splits among "
                        f"{', '.join(present) or 'none'}; name them (--train-split, --dev-split, --test-split)")
    return DefaultSplits(folded["train"], dev, tuple(tests))


class DataError(ValueError):
    """Bad input data; the message is one line naming the file (and row) at fault."""


@dataclass(frozen=True)
class Utterance:
    id: str
    path: Path
    label: str
    split: str
    speaker: str | None = None  # None: unknown speaker
    transcript: str | None = None  # None: no transcript
    source: str = ""  # "manifest.csv row 12", for error messages


class Corpus(Protocol):
    name: str
    spec: str  # a KIND:PATH?options string that ``open_corpus`` reopens to the same corpus
    classes: tuple[str, ...]
    dropped: dict[str, int]  # reason -> utterances (or files) left out for it

    def splits(self) -> tuple[str, ...]: ...

    def default_splits(self) -> DefaultSplits: ...

    def utterances(self, split: str) -> list[Utterance]: ...


class ListedCorpus:
    """Utterances held in memory, grouped by split in the order splits first appear."""

    DEFAULT_SPLITS: DefaultSplits | None = None  # a reader's own defaults; None: by name (``default_splits``)

    def __init__(self, name: str, spec: str, classes: tuple[str, ...], utterances: Iterable[Utterance],
                 dropped: Counter[str] | dict[str, int], where: str):
        self.name, self.spec, self.classes, self.where = name, spec, tuple(classes), where
        self.dropped = dict(sorted(dropped.items(), key=lambda item: (-item[1], item[0])))
        self._by_split: dict[str, list[Utterance]] = {}
        for utterance in utterances:
            self._by_split.setdefault(utterance.split, []).append(utterance)

    def splits(self) -> tuple[str, ...]:
        return tuple(self._by_split)

    def default_splits(self) -> DefaultSplits:
        return default_splits(self.splits(), self.where, self.DEFAULT_SPLITS)

    def utterances(self, split: str) -> list[Utterance]:
        """The split's utterances. ``split`` matches case-insensitively (``Test1`` finds ``test1``), and
        ``development`` and ``validation`` name the same split, so training's default split names
        find RAVDESS's validation actors."""
        wanted = {split.casefold()} | (VALIDATION_NAMES if split.casefold() in VALIDATION_NAMES else set())
        found = self._by_split.get(split) or next(
            (group for name, group in self._by_split.items() if name.casefold() in wanted), None)
        if not found:
            raise DataError(f"{self.where}: split {split!r} has no utterances "
                            f"(splits present: {', '.join(self.splits()) or 'none'})")
        return list(found)


def check_options(kind: str, options: dict[str, object], known: tuple[str, ...]) -> None:
    """One line naming an option the reader does not take, and the ones it does."""
    unknown = [name for name in options if name not in known]
    if unknown:
        raise DataError(f"{kind}: unknown option {unknown[0]!r}; options: {', '.join(known) or 'none'}")


def bool_option(kind: str, name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise DataError(f"{kind}: option {name} expects true or false, got {value!r}")


def int_option(kind: str, name: str, value: object, low: int, high: int) -> int:
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        number = None
    if number is None or isinstance(number, bool) or not low <= number <= high:
        raise DataError(f"{kind}: option {name} expects an integer in {low}..{high}, got {value!r}")
    return number


def list_option(value: object) -> tuple[str, ...]:
    """``"a,b"`` or an iterable of strings -> ``("a", "b")``."""
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]  # type: ignore[union-attr]
    return tuple(item.strip() for item in items if item.strip())
