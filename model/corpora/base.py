"""What every corpus reader yields: ``Utterance`` records in named splits, and what it dropped and why."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

VALIDATION_NAMES = {"development", "validation"}


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

    def utterances(self, split: str) -> list[Utterance]: ...


class ListedCorpus:
    """Utterances held in memory, grouped by split in the order splits first appear."""

    def __init__(self, name: str, spec: str, classes: tuple[str, ...], utterances: Iterable[Utterance],
                 dropped: Counter[str] | dict[str, int], where: str):
        self.name, self.spec, self.classes, self.where = name, spec, tuple(classes), where
        self.dropped = dict(sorted(dropped.items(), key=lambda item: (-item[1], item[0])))
        self._by_split: dict[str, list[Utterance]] = {}
        for utterance in utterances:
            self._by_split.setdefault(utterance.split, []).append(utterance)

    def splits(self) -> tuple[str, ...]:
        return tuple(self._by_split)

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
