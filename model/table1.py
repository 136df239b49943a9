"""Table 1 of "How Attention Shapes Emotion": our macro-F1 beside the paper's, per mechanism x backbone.

The paper's numbers come from ``results/reference/paper_table1_macro_f1.csv`` (columns mechanism,
backbone, dev, test1, test2; percent). Ours come from accuracy rows (``"kind": "accuracy"``) of
results files, joined on:

- mechanism: our mixer under the paper's name (``sa`` -> SA, ``kda`` -> KDA, ...), kernels merged
  (``sa:sdpa`` and ``sa:naive`` compute the same function); another fusion is its own row
  (``GAT fusion (sa)``) with no paper value;
- backbone: the speech encoder recognised by name (``...xlsr...`` -> Wav2Vec2XLSR, ``...wavlm...`` ->
  WavLM, ``...hubert...`` -> HuBERT, ``...wav2vec2...`` -> Wav2Vec2); any other encoder keeps its own
  name and has no paper value;
- split: development -> Dev, test1 -> Test1, test2 -> Test2 (MSP-Podcast's Development, Test1, Test2).
  The paper's Dev is MSP-Podcast v1.0's Development set; ours is the Development split of whatever
  corpus version was read. Other splits (e.g. ``test`` of the synthetic corpus) are left out.

Several rows of one cell: a run scored twice on a split counts once (its last row), and the runs of
a cell (seeds) are averaged; their number and standard deviation are reported beside the mean. Mean
rows average the four backbones, ours only where all four are present. A cell with no value is "-".
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pandas as pd

from model.metrics import read_rows

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference" / "paper_table1_macro_f1.csv"
MECHANISMS = {"sa": "SA", "retnet": "RetNet", "lightnet": "LightNet", "gsa": "GSA", "fox": "FoX", "kda": "KDA"}
BACKBONES = ("Wav2Vec2XLSR", "WavLM", "Wav2Vec2", "HuBERT")  # the paper's column order
SPLITS = {"development": "Dev", "dev": "Dev", "test1": "Test1", "test2": "Test2"}
COLUMNS = ("Dev", "Test1", "Test2")
HEADINGS = {"Dev": "Dev (v1)", "Test1": "Test1", "Test2": "Test2"}
FORMATS = ("markdown", "csv", "json")


def backbone(encoder: str) -> str:
    """The paper's backbone name for one of our speech encoder names, or the name itself."""
    low = encoder.lower().replace("-", "").replace("_", "")
    for key, name in (("xlsr", "Wav2Vec2XLSR"), ("xls", "Wav2Vec2XLSR"), ("wavlm", "WavLM"), ("hubert", "HuBERT"),
                      ("wav2vec2", "Wav2Vec2")):
        if key in low:
            return name
    return encoder


def mechanism(mixer: str, fusion: str = "concat") -> str:
    """The paper's name for our mixer in the paper's model; another fusion is named apart: ``GAT fusion (sa)``."""
    return MECHANISMS.get(mixer, mixer) if fusion == "concat" else f"{fusion.upper()} fusion ({mixer})"


def load_reference(path: Path = REFERENCE) -> pd.DataFrame:
    """The paper's Table 1 in percent: mechanism, backbone, Dev, Test1, Test2 (NaN where it gives none)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such reference file: {path}")
    frame = pd.read_csv(path, comment="#")
    expected = {"mechanism", "backbone", "dev", "test1", "test2"}
    if not expected <= set(frame.columns):
        raise ValueError(f"{path}: expected columns {sorted(expected)}, got {sorted(frame.columns)}")
    return frame.rename(columns={"dev": "Dev", "test1": "Test1", "test2": "Test2"})[
        ["mechanism", "backbone", *COLUMNS]]


def our_scores(paths: list[Path], corpus: str | None = None) -> pd.DataFrame:
    """Mean, std and runs of our macro-F1 (percent) per mechanism, backbone and Table 1 split."""
    rows = []
    for path in paths:
        if not Path(path).is_file():
            raise ValueError(f"no such results file: {path}")
        rows += read_rows(Path(path), "accuracy")
    if not rows:
        raise ValueError(f"no accuracy rows (\"kind\": \"accuracy\") in {', '.join(map(str, paths))}")
    frame = pd.DataFrame(rows)
    if "run_dir" not in frame:  # rows without a run folder are each their own run
        frame["run_dir"] = None
    frame["run_dir"] = frame["run_dir"].fillna(pd.Series([f"row {i}" for i in range(len(frame))], index=frame.index))
    corpora = sorted(frame["corpus"].dropna().unique()) if "corpus" in frame else []
    if corpus is not None:
        frame = frame[frame["corpus"] == corpus]
        if frame.empty:
            raise ValueError(f"no accuracy rows for corpus {corpus!r}; corpora present: {', '.join(corpora)}")
    elif len(corpora) > 1:
        raise ValueError(f"accuracy rows of several corpora ({', '.join(corpora)}); choose one with --corpus")
    frame = frame.assign(column=frame["split"].str.lower().map(SPLITS)).dropna(subset=["column"])
    if frame.empty:
        return pd.DataFrame(columns=["mechanism", "backbone", "column", "ours", "std", "runs"])
    fusion = frame["fusion"].fillna("concat") if "fusion" in frame else "concat"
    frame = frame.assign(fusion=fusion)
    frame = frame.drop_duplicates(["run_dir", "split"], keep="last")  # a run re-scored counts once
    frame["mechanism"] = [mechanism(m, f) for m, f in zip(frame["mixer"], frame["fusion"], strict=True)]
    frame["backbone"] = frame["speech_encoder"].map(backbone)
    frame["ours"] = frame["macro_f1"].astype(float) * 100
    return frame.groupby(["mechanism", "backbone", "column"], as_index=False).agg(
        ours=("ours", "mean"), std=("ours", "std"), runs=("ours", "size"))


def table(paths: list[Path], reference: Path = REFERENCE, corpus: str | None = None) -> list[dict]:
    """One record per (mechanism, backbone): for each column, ours (mean, std, runs) and the paper's."""
    paper, ours = load_reference(reference), our_scores(paths, corpus)
    order = list(dict.fromkeys([*paper["mechanism"], *sorted(set(ours["mechanism"]) - set(paper["mechanism"]))]))
    records = {}
    for _, row in paper.iterrows():
        records[(row["mechanism"], row["backbone"])] = _empty(row["mechanism"], row["backbone"])
        for column in COLUMNS:
            records[(row["mechanism"], row["backbone"])][column]["paper"] = _number(row[column])
    for _, row in ours.iterrows():
        key = (row["mechanism"], row["backbone"])
        cell = records.setdefault(key, _empty(*key))[row["column"]]
        cell.update(ours=float(row["ours"]), std=_number(row["std"]), runs=int(row["runs"]))
    for name in order:  # our mean over the paper's four backbones, where we have all four
        mean = records.setdefault((name, "mean"), _empty(name, "mean"))
        for column in COLUMNS:
            values = [records.get((name, b), {}).get(column, {}).get("ours") for b in BACKBONES]
            if all(v is not None for v in values):
                mean[column]["ours"] = sum(values) / len(values)
    rank = {b: i for i, b in enumerate([*BACKBONES, "mean"])}
    keys = sorted(records, key=lambda k: (order.index(k[0]), rank.get(k[1], len(rank)), k[1]))
    stated = set(zip(paper["mechanism"], paper["backbone"], strict=True))
    return [records[k] for k in keys if k[1] != "mean" or k in stated or _any(records[k])]


def render(records: list[dict], fmt: str, note: str = "") -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps(records, indent=2)
    header = ["mechanism", "backbone"]
    for column in COLUMNS:
        header += [f"{HEADINGS[column]} ours", f"{HEADINGS[column]} paper"]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["mechanism", "backbone", *(f"{c.lower()}_{k}" for c in COLUMNS
                                                     for k in ("ours", "std", "runs", "paper"))])
        for r in records:
            writer.writerow([r["mechanism"], r["backbone"], *(_csv(r[c][k]) for c in COLUMNS
                                                              for k in ("ours", "std", "runs", "paper"))])
        return out.getvalue()
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in records:
        cells = [r["mechanism"], r["backbone"]]
        for column in COLUMNS:
            cells += [_ours(r[column]), _pct(r[column]["paper"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + ("\n\n" + note if note else "") + "\n"


def _empty(mechanism_name: str, backbone_name: str) -> dict:
    return {"mechanism": mechanism_name, "backbone": backbone_name,
            **{c: {"ours": None, "std": None, "runs": 0, "paper": None} for c in COLUMNS}}


def _any(record: dict) -> bool:
    return any(record[c]["ours"] is not None for c in COLUMNS)


def _number(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ours(cell: dict) -> str:
    if cell["ours"] is None:
        return "-"
    spread = f" ± {cell['std']:.2f} (n={cell['runs']})" if cell["runs"] > 1 and cell["std"] is not None else ""
    return f"{cell['ours']:.2f}{spread}"


def _csv(value) -> str:
    return "" if value is None else str(value)
