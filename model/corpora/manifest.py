"""A corpus described by a CSV manifest: the synthetic corpus, IEMOCAP, CREMA-D, anything else.

Columns: ``path`` (relative to the CSV's folder, or absolute), ``label``, ``split``, and optionally
``speaker`` and ``transcript`` (empty cells: unknown speaker, no transcript). A ``corpus.json``
beside the CSV may fix the class list and its order (``{"classes": [...]}``); a label outside it is
an error naming the row. Without it the classes are the labels found, sorted.

Options (``csv:FILE?classes=...&merge=...``) cover the usual subsets of other corpora:
``classes=neu,hap,ang,sad`` keeps those labels in that order and drops the rest (counted per label),
``merge=exc:hap`` relabels before selecting (IEMOCAP's four-class set merges excited into happy).
For leave-one-session-out IEMOCAP write one manifest per fold, each with its own split column.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from model.corpora.base import DataError, ListedCorpus, Utterance, check_options, list_option
from model.corpora.spec import format_spec
from model.frontend import SAMPLE_RATE

REQUIRED_COLUMNS = ("path", "label", "split")
OPTIONAL_COLUMNS = ("speaker", "transcript")
OPTIONS = ("classes", "merge")


class ManifestCorpus(ListedCorpus):
    """The rows of one manifest CSV (see the module docstring for the layout and options)."""

    def __init__(self, manifest: Path, classes: tuple[str, ...] | None = None,
                 merge: dict[str, str] | None = None, kind: str = "csv"):
        self.manifest = Path(manifest)
        if not self.manifest.is_file():
            raise DataError(f"{self.manifest}: no such manifest file")
        meta_path = self.manifest.parent / "corpus.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        fixed = tuple(classes) if classes else tuple(meta["classes"]) if "classes" in meta else None
        dropped: Counter[str] = Counter()
        utterances = list(self._read(fixed, bool(classes), merge or {}, dropped))
        found = tuple(sorted({u.label for u in utterances}))
        where = str(self.manifest)
        spec = format_spec(kind, self.manifest.parent if kind == "synthetic" else self.manifest,
                           {"classes": classes or None, "merge": _merge_text(merge)})
        super().__init__(self.manifest.parent.name or where, spec, fixed or found, utterances, dropped, where)
        self.sample_rate = int(meta.get("sample_rate", SAMPLE_RATE))

    def _read(self, classes: tuple[str, ...] | None, drop_others: bool, merge: dict[str, str],
              dropped: Counter[str]) -> Iterator[Utterance]:
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
                label = merge.get(row["label"].strip(), row["label"].strip())
                if classes is not None and label not in classes:
                    if drop_others:
                        dropped[f"label {label!r} not in classes"] += 1
                        continue
                    raise DataError(f"{source}: unknown label {label!r}; known labels: {', '.join(classes)}")
                path = Path(row["path"].strip())
                yield Utterance(
                    id=path.stem, path=path if path.is_absolute() else self.manifest.parent / path,
                    label=label, split=row["split"].strip(), speaker=(row.get("speaker") or "").strip() or None,
                    transcript=(row.get("transcript") or "").strip() or None, source=source,
                )


def open_manifest(kind: str, path: str, options: dict[str, object]) -> ManifestCorpus:
    """``csv:FILE`` or ``synthetic:DIR`` (``DIR/manifest.csv``) with the options above."""
    check_options(kind, options, OPTIONS)
    target = Path(path)
    if kind == "synthetic" and (target.is_dir() or not target.suffix):
        target = target / "manifest.csv"
    classes = list_option(options["classes"]) if "classes" in options else None
    return ManifestCorpus(target, classes or None, _merge(kind, options.get("merge")), kind)


def _merge(kind: str, value: object) -> dict[str, str] | None:
    if value is None or isinstance(value, dict):
        return value  # type: ignore[return-value]
    pairs = [item.partition(":") for item in list_option(value)]
    if any(not sep or not a or not b for a, sep, b in pairs):
        raise DataError(f"{kind}: option merge expects FROM:TO pairs joined by commas, got {value!r}")
    return {a.strip(): b.strip() for a, _, b in pairs}


def _merge_text(merge: dict[str, str] | None) -> str | None:
    return ",".join(f"{a}:{b}" for a, b in merge.items()) if merge else None


def write_manifest(path: Path, rows: list[dict[str, str]], classes: tuple[str, ...], **meta) -> None:
    """The manifest CSV and its ``corpus.json``, written so the reader above reads them back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS])
        writer.writeheader()
        writer.writerows(rows)
    (path.parent / "corpus.json").write_text(json.dumps({"classes": list(classes), **meta}, indent=2) + "\n")
