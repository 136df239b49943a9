"""Reading results files for figures and reports: cell rows, accuracy rows, the paper's stated points.

Everything here reads files only (``bench.results`` for the JSON-lines format), so a figure can be
redrawn on any machine from a file that came from another. Each cell row gets three derived
columns every figure and table uses: ``label`` (``sa:naive``, ``kda:torch``), ``style_key`` (what
fixes a series' colour and marker) and ``device_name`` filled from the file's header when the row
itself has none.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from bench.cases import default_causal
from bench.results import ROW_DEFAULTS, read_frame, read_rows
from plots.runs import merge_runs

SETTINGS = ["dtype", "batch", "hidden", "heads", "mode", "options"]
"""``options``: the harness settings beyond the mode, spelled as in case ids (``adamw-compile``)."""
"""What a sweep holds fixed for one figure; runs (devices) may differ within it."""
CONFIG = ["source", "device_name", *SETTINGS]
"""Columns that fix one benchmark configuration (``source``: the run): a fit or a crossover never mixes them."""

NUMERIC = ("median_ms", "p20_ms", "p80_ms", "min_ms", "peak_bytes", "peak_above_bytes",
           "predicted_activation_bytes", "predicted_flops", "weight_bytes", "energy_j_per_call", "power_w_mean")
REFERENCE_DIR = Path(__file__).resolve().parent.parent / "results" / "reference"
PAPER_POINTS = REFERENCE_DIR / "paper_figure2_points.csv"

# The paper names its mechanisms; our registry names mixers. The paper's SA stored its L x L scores
# (12.35 GB at 400 s is what scores and probabilities take in fp32), so it is drawn as ``sa:naive``.
PAPER_MIXERS = {"SA": "sa:naive", "RetNet": "retnet", "LightNet": "lightnet", "GSA": "gsa", "FoX": "fox",
                "KDA": "kda"}


def style_key(mixer: str, kernel: str) -> str:
    """SA's two kernels behave so differently that each is its own series; other mixers by name."""
    return f"sa:{kernel}" if mixer == "sa" else mixer


def load_cells(*paths: Path) -> pd.DataFrame:
    """Cell rows of every file, one frame, with ``label``, ``style_key`` and ``device_name`` filled.

    ``source`` names each row's run (``plots.runs``: files of one device whose cells do not overlap
    are one run), ``file`` its own file.
    """
    for path in paths:
        if not Path(path).is_file():
            raise ValueError(f"no such results file: {path}")
    files = [_cells_of(Path(path)) for path in paths]
    files = [f for f in files if not f[2].empty]
    if not files:
        raise ValueError(f"no cell rows in {', '.join(map(str, paths))}; expected files written by `bench sweep`")
    return merge_runs(files)


def _cells_of(path: Path) -> tuple[str, dict | None, pd.DataFrame]:
    """(path, first header, prepared cells) of one file; the cells are empty when it has none."""
    frame = read_frame(path)
    headers = read_rows(path, "header")
    header = headers[0] if headers else None
    if frame.empty or "mixer" not in frame:
        return str(path), header, pd.DataFrame()
    return str(path), header, prepare_cells(frame, header.get("device_name") if header else None)


def prepare_cells(frame: pd.DataFrame, header_device: str | None = None) -> pd.DataFrame:
    """Cell rows as figures and tables use them: numeric columns, ``label``, ``style_key``, device name."""
    frame = frame.copy()
    names = frame["device_name"] if "device_name" in frame else pd.Series(None, index=frame.index, dtype=object)
    # Rows written by the harness may leave device_name empty; the header records it once per run.
    if header_device:
        names = names.fillna(header_device)
    frame["device_name"] = names.fillna(frame["device"])
    if "source" not in frame:
        frame["source"] = ""
    _fill_axes(frame)
    # SA is the one mixer whose mask is an option: a causal SA is its own series.
    frame["label"] = frame["mixer"] + ":" + frame["kernel"] + [
        "" if c == default_causal(m, mode, b) else (" causal" if c else " noncausal")
        for m, mode, b, c in zip(frame["mixer"], frame["mode"], frame["bidirectional"], frame["causal"])]
    frame["style_key"] = [style_key(m, k) for m, k in zip(frame["mixer"], frame["kernel"])]
    for column in NUMERIC:
        frame[column] = pd.to_numeric(frame[column], errors="coerce") if column in frame else float("nan")
    # Every figure and table checks ``peak_above_bytes`` against ``predicted_activation_bytes``: make
    # that the prediction for the row's own mode (a training step's; none for one streaming step).
    train = pd.to_numeric(frame["predicted_train_bytes"], errors="coerce") if "predicted_train_bytes" in frame \
        else pd.Series(float("nan"), index=frame.index)
    forward = frame["mode"] == "forward"
    frame["predicted_activation_bytes"] = frame["predicted_activation_bytes"].where(
        forward, train.where(frame["mode"] == "train"))
    # Achieved FLOP/s of a training step: forward + backward, the backward at twice the forward's FLOPs
    # (two products per forward product: the input's and the weight's gradient); none for a stream step.
    frame["predicted_flops"] = frame["predicted_flops"].where(
        forward, (3 * frame["predicted_flops"]).where(frame["mode"] == "train"))
    return frame


def _fill_axes(frame: pd.DataFrame) -> None:
    """Axes that older files (or hand-made frames) lack get the harness's defaults; ``options``."""
    for column, default in ROW_DEFAULTS.items():
        if column not in frame:
            frame[column] = default
    frame["combine"] = frame["combine"].astype(object).where(frame["combine"].notna(), "")
    if "causal" not in frame:
        frame["causal"] = None
    frame["causal"] = [default_causal(m, mode, b) if c is None or c != c else bool(c)
                       for m, mode, b, c in zip(frame["mixer"], frame["mode"], frame["bidirectional"], frame["causal"])]
    frame["options"] = ["-".join(part for part, on in (("adamw", a), ("compile", c), ("graphs", g),
                                                       (f"bidir:{j}", b)) if on)
                        for a, c, g, b, j in zip(frame["optimizer_step"], frame["compile"], frame["cuda_graphs"],
                                                 frame["bidirectional"], frame["combine"])]


def by_settings(cells: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One (name suffix, cells) per settings combination; the suffix is empty when there is one."""
    groups = list(cells.groupby(SETTINGS, sort=True))
    if len(groups) == 1:
        return [("", cells)]
    # Named as in case ids: fp32-B1-D1024-H4-forward.
    spell = {"dtype": "{}", "batch": "B{}", "hidden": "D{}", "heads": "H{}", "mode": "{}", "options": "{}"}
    return [("-" + "-".join(spell[c].format(v) for c, v in zip(SETTINGS, key) if v != ""), group)
            for key, group in groups]


def check_one_setting(cells: pd.DataFrame, what: str) -> None:
    fixed = cells[SETTINGS].drop_duplicates()
    if len(fixed) != 1:
        found = "; ".join(" ".join(f"{k}={v}" for k, v in row.items()) for row in fixed.to_dict("records"))
        raise ValueError(f"{what} draws one configuration at a time, got {len(fixed)}: {found}")


def load_headers(*paths: Path) -> list[dict]:
    """The first header of each file (a resumed file has several; the first describes the run)."""
    out = []
    for path in paths:
        headers = read_rows(Path(path), "header")
        out.append({"source": str(path), **(headers[0] if headers else {})})
    return out


ACCURACY_GROUP = ["system", "corpus", "speech_encoder"]
"""What accuracy rows of one mixer and kernel must share to be averaged (seeds) into one point."""


def load_accuracy(*paths: Path) -> pd.DataFrame:
    """Accuracy rows (``"kind": "accuracy"``, model package) of every file, concat fusion and the SER
    model only; empty if none. ``ACCURACY_GROUP`` columns are filled (``system`` "ser", others "?")."""
    frames = [read_frame(Path(path), kind="accuracy") for path in paths]
    frames = [f for f in frames if not f.empty and {"mixer", "kernel", "macro_f1"} <= set(f.columns)]
    accuracy = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if accuracy.empty:
        return accuracy
    for column, missing in zip(ACCURACY_GROUP, ("ser", "?", "?"), strict=True):
        accuracy[column] = accuracy[column].fillna(missing) if column in accuracy else missing
    # Cells time a mixer alone: a row of another fusion (gat: model.systems.gat_fusion) or of another
    # system (ResLSTM-SA's rows name mixer reslstm) is a whole system's accuracy, not that mixer's in
    # the SER model the cells time, so only the SER model with the paper's concat fusion joins them.
    keep = accuracy["system"] == "ser"
    if "fusion" in accuracy:
        keep &= accuracy["fusion"].fillna("concat") == "concat"
    return accuracy[keep].reset_index(drop=True)


def load_paper_points(path: Path = PAPER_POINTS) -> pd.DataFrame:
    """The paper's stated Figure 2 points, with ``style_key`` and the ``device`` they were measured on.

    The device comes from the file's ``# GPU:`` comment line (section 4.3: four NVIDIA H100).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such reference file: {path}")
    text = path.read_text(encoding="utf-8")
    device = "the paper's GPU"
    for line in text.splitlines():
        found = re.match(r"#\s*GPU:.*?(NVIDIA [\w\- ]*\w)", line)
        if found:
            device = found.group(1)
    points = pd.read_csv(path, comment="#")
    expected = {"mechanism", "audio_seconds", "metric", "value", "unit"}
    if not expected <= set(points.columns):
        raise ValueError(f"{path}: expected columns {sorted(expected)}, got {sorted(points.columns)}")
    points["style_key"] = points["mechanism"].map(PAPER_MIXERS)
    points["device"] = device
    return points
