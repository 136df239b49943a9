"""What Figure 2 leaves out, computed once for figures and reports alike.

- Scaling: latency ~ length^alpha and activation memory ~ length^beta, least squares on log-log
  axes over the longest lengths of each series (short lengths are dominated by fixed overheads:
  kernel launches, Python, the weights).
- Crossovers: the audio length at which an efficient mixer becomes faster than an SA kernel,
  interpolated linearly in log(time) against log(seconds) between the two measured lengths that
  bracket the sign change.
- Cost-model check: measured activation peak against the mixer's predicted activation bytes, and
  the achieved FLOP/s (predicted FLOPs over the measured median time).
- Pareto front of accuracy against latency.

Every function takes the frame ``plots.load.load_cells`` returns and never mixes configurations
(``plots.load.CONFIG``: file, device, dtype, batch, width, heads, mode).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.cases import HOP, RECEPTIVE_FIELD, SAMPLE_RATE
from plots.load import ACCURACY_GROUP, CONFIG

SA_BASELINES = ("sa:sdpa", "sa:naive")
MIN_FIT_POINTS = 3


def frames_at(seconds):
    """wav2vec2's frame count without the floor: a smooth axis for plots and interpolated lengths."""
    return (np.asarray(seconds, dtype=float) * SAMPLE_RATE - RECEPTIVE_FIELD) / HOP + 1


def seconds_at(frames):
    return ((np.asarray(frames, dtype=float) - 1) * HOP + RECEPTIVE_FIELD) / SAMPLE_RATE


def ok_cells(cells: pd.DataFrame) -> pd.DataFrame:
    return cells[(cells["status"] == "ok") & cells["median_ms"].notna()]


def memory_ratio(measured_bytes, predicted_bytes) -> float | None:
    """Measured over predicted activation bytes; None when either is missing or the prediction is 0."""
    if _missing(measured_bytes) or _missing(predicted_bytes) or predicted_bytes <= 0:
        return None
    return float(measured_bytes) / float(predicted_bytes)


def achieved_flops(flops, median_ms) -> float | None:
    """FLOP/s the measured median achieves on the cost model's FLOP count."""
    if _missing(flops) or _missing(median_ms) or median_ms <= 0:
        return None
    return float(flops) / (float(median_ms) / 1e3)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def power_fit(lengths, values) -> tuple[float, float]:
    """(exponent, prefactor) of ``values ~ prefactor * lengths**exponent``, least squares in log-log."""
    x, y = np.log(np.asarray(lengths, dtype=float)), np.log(np.asarray(values, dtype=float))
    if len(x) < 2 or np.ptp(x) == 0:
        raise ValueError(f"a power-law fit needs at least two distinct lengths, got {len(x)}")
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(math.exp(intercept))


def scaling(cells: pd.DataFrame, min_points: int = MIN_FIT_POINTS) -> pd.DataFrame:
    """alpha (latency) and beta (activation memory) per series, over its longest half of lengths.

    A series needs ``min_points`` lengths or more; with fewer it gets no row (two points always fit).
    """
    rows = []
    for key, series in ok_cells(cells).groupby(CONFIG + ["label", "style_key"], sort=False):
        series = series.sort_values("frames")
        if series["frames"].nunique() < min_points:
            continue
        tail = series.tail(max(min_points, math.ceil(len(series) / 2)))
        alpha, _ = power_fit(tail["frames"], tail["median_ms"])
        memory = tail[tail["peak_above_bytes"] > 0]
        beta = power_fit(memory["frames"], memory["peak_above_bytes"])[0] if len(memory) >= min_points else None
        rows.append({**dict(zip(CONFIG + ["label", "style_key"], key)), "alpha": alpha, "beta": beta,
                     "from_s": float(tail["seconds"].min()), "to_s": float(tail["seconds"].max()),
                     "points": len(tail)})
    return pd.DataFrame(rows, columns=CONFIG + ["label", "style_key", "alpha", "beta", "from_s", "to_s", "points"])


def crossover(seconds, efficient_ms, baseline_ms) -> tuple[float | None, str]:
    """Where ``efficient`` becomes faster than ``baseline`` for good, and how it was found.

    Returns (seconds, note) with note ``crosses`` (interpolated), ``faster throughout`` (seconds is
    None: already faster at the shortest length) or ``never in range`` (not faster at the longest).
    """
    s = np.asarray(seconds, dtype=float)
    gap = np.log(np.asarray(efficient_ms, dtype=float)) - np.log(np.asarray(baseline_ms, dtype=float))
    slower = np.flatnonzero(gap >= 0)
    if len(slower) == 0:
        return None, "faster throughout"
    last = slower[-1]
    if last == len(s) - 1:
        return None, "never in range"
    # The gap changes sign between last and last + 1: interpolate in log(seconds).
    fraction = gap[last] / (gap[last] - gap[last + 1])
    log_s = math.log(s[last]) + fraction * (math.log(s[last + 1]) - math.log(s[last]))
    return float(math.exp(log_s)), "crosses"


def crossovers(cells: pd.DataFrame, baselines: tuple[str, ...] = SA_BASELINES) -> pd.DataFrame:
    """For every efficient mixer and every SA kernel present in the same configuration."""
    rows = []
    for key, config in ok_cells(cells).groupby(CONFIG, sort=False):
        medians = config.groupby(["label", "seconds"])["median_ms"].median()
        efficient = [label for label in config["label"].unique() if not label.startswith("sa:")]
        for base in [b for b in baselines if b in medians.index.get_level_values(0)]:
            for label in efficient:
                common = sorted(set(medians[label].index) & set(medians[base].index))
                if not common:
                    continue
                at, note = crossover(common, medians[label][common].values, medians[base][common].values)
                rows.append({**dict(zip(CONFIG, key)), "label": label, "versus": base, "crossover_s": at,
                             "crossover_frames": None if at is None else float(frames_at(at)), "note": note,
                             "from_s": common[0], "to_s": common[-1],
                             "speedup_at_longest": medians[base][common[-1]] / medians[label][common[-1]]})
    columns = CONFIG + ["label", "versus", "crossover_s", "crossover_frames", "note", "from_s", "to_s",
                        "speedup_at_longest"]
    return pd.DataFrame(rows, columns=columns)


def describe_crossover(row) -> str:
    """One reader-facing phrase: ``37.2 s``, ``faster from 10 s on``, ``never in 10-100 s``."""
    if row["note"] == "crosses":
        return f"{row['crossover_s']:.3g} s"
    if row["note"] == "faster throughout":
        return f"faster from {row['from_s']:g} s on"
    return f"never in {row['from_s']:g}-{row['to_s']:g} s"


def cell_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Every cell with the cost-model check beside it: the rows of reports and exports."""
    table = cells.copy()
    table["memory_ratio"] = [memory_ratio(m, p) for m, p in
                             zip(table["peak_above_bytes"], table["predicted_activation_bytes"])]
    table["achieved_flops"] = [achieved_flops(f, t) if s == "ok" else None for f, t, s in
                               zip(table["predicted_flops"], table["median_ms"], table["status"])]
    columns = CONFIG + ["label", "style_key", "seconds", "frames", "status", "median_ms", "p20_ms", "p80_ms",
                        "min_ms", "n", "peak_bytes", "peak_above_bytes", "predicted_activation_bytes",
                        "memory_ratio", "predicted_flops", "achieved_flops", "energy_j_per_call", "power_w_mean",
                        "energy_source", "message"]
    return table.reindex(columns=columns).sort_values(CONFIG + ["label", "seconds"], kind="stable")


def cost_check(cells: pd.DataFrame) -> pd.DataFrame:
    """The ok cells that carry a prediction, with measured/predicted memory and achieved FLOP/s."""
    table = cell_table(ok_cells(cells))
    return table[table["memory_ratio"].notna() | table["achieved_flops"].notna()]


def pareto_front(latency, score) -> np.ndarray:
    """Mask of points no other point beats: lower or equal latency with a higher score."""
    latency, score = np.asarray(latency, dtype=float), np.asarray(score, dtype=float)
    front = np.zeros(len(latency), dtype=bool)
    best = -math.inf
    for i in np.lexsort((-score, latency)):
        if score[i] > best:
            front[i], best = True, score[i]
    return front


def accuracy_vs_latency(cells: pd.DataFrame, accuracy: pd.DataFrame, seconds: float | None = None,
                        split: str | None = None, corpus: str | None = None,
                        encoder: str | None = None) -> tuple[pd.DataFrame, float, str]:
    """Macro-F1 (mean over runs) beside median latency at one audio length, joined on mixer + kernel.

    Runs are averaged only within one (system, corpus, speech encoder) group (``plots.load.ACCURACY_GROUP``):
    one group is drawn, the one named by ``corpus`` / ``encoder``, else the one with the most rows of the
    split. ``seconds`` defaults to the longest length at which every mixer that has accuracy rows was
    measured; ``split`` to ``test`` when present. Returns (points with a ``pareto`` column and the group's
    columns, seconds, split); ``points.attrs["groups"]`` lists every group of the split, largest first.
    """
    if accuracy.empty:
        raise ValueError("no accuracy rows (\"kind\": \"accuracy\") in the results files")
    splits = list(accuracy["split"].dropna().unique()) if "split" in accuracy else []
    split = split or ("test" if "test" in splits else splits[0] if splits else None)
    if split is not None and splits and split not in splits:
        raise ValueError(f"no accuracy rows for split {split!r}; splits present: {', '.join(map(str, splits))}")
    chosen = accuracy[accuracy["split"] == split] if split is not None else accuracy
    chosen, groups = accuracy_group(chosen, corpus, encoder)
    scores = chosen.groupby(ACCURACY_GROUP + ["mixer", "kernel"], as_index=False).agg(
        macro_f1=("macro_f1", "mean"), macro_f1_std=("macro_f1", "std"), runs=("macro_f1", "size"))
    measured = ok_cells(cells).merge(scores[["mixer", "kernel"]], on=["mixer", "kernel"])
    if measured.empty:
        raise ValueError("no measured cell matches an accuracy row on mixer and kernel")
    if seconds is None:
        per_length = measured.groupby("seconds")["label"].nunique()
        seconds = float(per_length[per_length == per_length.max()].index.max())
    at = measured[measured["seconds"] == seconds]
    if at.empty:
        raise ValueError(f"no measured cell at {seconds:g} s; lengths: "
                         f"{', '.join(f'{s:g}' for s in sorted(measured['seconds'].unique()))}")
    latency = at.groupby(CONFIG + ["mixer", "kernel", "label", "style_key"], as_index=False)["median_ms"].median()
    points = latency.merge(scores, on=["mixer", "kernel"])
    points["pareto"] = False
    for _, group in points.groupby(CONFIG, sort=False):
        points.loc[group.index, "pareto"] = pareto_front(group["median_ms"], group["macro_f1"])
    points.attrs["groups"] = groups
    return points, seconds, split


def accuracy_group(rows: pd.DataFrame, corpus: str | None = None,
                   encoder: str | None = None) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
    """The rows of one (system, corpus, speech encoder) group: the largest of those matching ``corpus``
    and ``encoder`` (the first seen on a tie), and every group present, largest first."""
    counts = rows.groupby(ACCURACY_GROUP, sort=False).size()
    groups = [tuple(g) for g in counts.sort_values(ascending=False, kind="stable").index]
    wanted = [g for g in groups if (corpus is None or g[1] == corpus) and (encoder is None or g[2] == encoder)]
    if not wanted:
        shown = "; ".join(f"corpus {c}, encoder {e}" for _, c, e in groups)
        raise ValueError(f"no accuracy rows for corpus {corpus or 'any'}, encoder {encoder or 'any'}; "
                         f"present: {shown}")
    picked = rows[(rows[ACCURACY_GROUP] == pd.Series(wanted[0], index=ACCURACY_GROUP)).all(axis=1)]
    return picked, groups
