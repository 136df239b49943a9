"""Accuracy against cost: macro-F1 of each trained mixer against its latency at one audio length.

The paper's closing trade-off (softmax attention most accurate, efficient mixers cheaper at long
inputs) as one scatter. Accuracy rows come from the model package (``"kind": "accuracy"``), joined
to cell rows on mixer and kernel; several runs of a mixer (seeds) are averaged and their standard
deviation drawn as an error bar, within one corpus and speech encoder only (the largest group, or
the one asked for; the title names it and counts the groups left out). The Pareto front (no other
mixer is both faster and more accurate) is drawn as a step line.
"""

from __future__ import annotations

import pandas as pd

from plots.analysis import accuracy_vs_latency
from plots.load import CONFIG
from plots.style import line_style, mixer_style


def accuracy_latency_figure(cells: pd.DataFrame, accuracy: pd.DataFrame, seconds: float | None = None,
                            split: str | None = None, corpus: str | None = None, encoder: str | None = None):
    from matplotlib.figure import Figure

    points, seconds, split = accuracy_vs_latency(cells, accuracy, seconds, split, corpus, encoder)
    figure = Figure(figsize=(7.5, 5.5), layout="constrained")
    ax = figure.subplots()
    sources = list(dict.fromkeys(points["source"]))
    for (source, *_), group in points.groupby(CONFIG, sort=False):
        for _, point in group.iterrows():
            colour, marker = mixer_style(point["style_key"])
            error = point["macro_f1_std"] if pd.notna(point["macro_f1_std"]) else None
            ax.errorbar([point["median_ms"]], [point["macro_f1"]], yerr=error, color=colour, marker=marker,
                        markersize=9, linestyle="none", capsize=3)
            ax.annotate(point["label"], (point["median_ms"], point["macro_f1"]), textcoords="offset points",
                        xytext=(7, 5), fontsize=8, color=colour)
        front = group[group["pareto"]].sort_values("median_ms")
        ax.step(front["median_ms"], front["macro_f1"], where="post", color="0.3",
                linestyle=line_style(sources.index(source)), linewidth=1,
                label=f"Pareto front ({group['device_name'].iloc[0]})")
    ax.set_xscale("log")
    ax.set_xlabel(f"median latency at {seconds:g} s of audio (ms)")
    ax.set_ylabel(f"macro-F1 ({split})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Accuracy against latency: up and to the left is better\n" + _group_title(points), loc="left",
                 fontsize=11)
    return figure


def _group_title(points: pd.DataFrame) -> str:
    """Which corpus and speech encoder the accuracy is of, and how many other groups were left out."""
    first = points.iloc[0]
    others = len(points.attrs.get("groups", [])) - 1
    note = f" ({others} other corpus/encoder group{'s' if others > 1 else ''}: --corpus, --encoder)" if others else ""
    return f"{first['corpus']}, {first['speech_encoder']}{note}"
