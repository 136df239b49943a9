"""Figure 2 of Casals-Salvador et al.: latency and peak memory of each mixer against audio length.

Panels as in the paper: (a) latency and (b) peak memory of every mixer, (c) and (d) the same
without softmax attention, whose quadratic growth flattens everything else. Beyond the paper:
the median is the line and the p20-p80 band is shaded; cells that were not measured (``oom``,
``skipped``, ``timeout``) are drawn hollow where they would have been: memory at the cost model's
prediction when the row carries one, otherwise both metrics extrapolated along the series' own
power law; the top axis gives wav2vec2 frames; the legend gives each mixer's fitted exponents
(alpha for latency, beta for activation memory). Several results files share the axes, one line
style each. The paper's stated points can be overlaid (``paper=``); the paper's "GB" is read as
GiB, which is what its 12.35 at 400 s matches (fp32 scores and probabilities: 11.9 GiB).

Memory is the whole peak (weights, input and activations), as the paper's "peak GPU usage".
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd

from plots.analysis import ok_cells, power_fit, scaling
from plots.load import check_one_setting
from plots.precision import notes as precision_notes
from plots.style import frames_axis, line_style, mixer_style, order_keys

NOT_MEASURED = ("oom", "skipped", "timeout")
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
GIB, MIB = 2**30, 2**20
PANELS = (("latency", True, "(a) latency, all mixers"), ("memory", True, "(b) peak memory, all mixers"),
          ("latency", False, "(c) latency without softmax attention"),
          ("memory", False, "(d) peak memory without softmax attention"))


def figure2(cells: pd.DataFrame, paper: pd.DataFrame | None = None, log: bool = False):
    """The four panels for one configuration (dtype, batch, width, heads, mode) of ``cells``."""
    from matplotlib.figure import Figure

    check_one_setting(cells, "Figure 2")
    sources = list(dict.fromkeys(cells["source"]))
    memory_unit = _memory_unit(cells, paper)
    figure = Figure(figsize=(13, 10), layout="constrained")
    axes = figure.subplots(2, 2)
    for ax, (metric, with_sa, title) in zip(axes.flat, PANELS):
        shown = cells if with_sa else cells[cells["mixer"] != "sa"]
        _panel(ax, shown, metric, sources, memory_unit, log)
        if paper is not None:
            _paper_points(ax, paper, metric, with_sa, memory_unit)
        if shown.empty:
            ax.text(0.5, 0.5, "no mixer other than softmax attention in these files", ha="center",
                    transform=ax.transAxes, color="0.4")
        ax.set_title(title, loc="left")
        # Every panel spans every length drawn anywhere: markers on the top edge do not widen the
        # autoscaled range, and shared ranges make the panels comparable.
        lengths = list(cells["seconds"]) + (list(paper["audio_seconds"]) if paper is not None else [])
        _cover(ax, min(lengths), max(lengths), log)
    figure.suptitle(_title(cells), fontsize=11)
    figure.legend(handles=_legend(cells, sources, paper), loc="outside lower center", ncol=3, fontsize=8.5,
                  frameon=False)
    return figure


def _cover(ax, low: float, high: float, log: bool) -> None:
    if log:
        ax.set_xlim(low / 1.15, high * 1.15)
    else:
        pad = 0.05 * (high - low) or 1.0
        ax.set_xlim(low - pad, high + pad)


def _memory_unit(cells: pd.DataFrame, paper: pd.DataFrame | None) -> tuple[float, str]:
    largest = cells["peak_bytes"].max()
    if paper is not None:
        largest = max(largest if largest == largest else 0, 12 * GIB)
    return (GIB, "GiB") if largest >= 2 * GIB else (MIB, "MiB")


def _panel(ax, cells: pd.DataFrame, metric: str, sources: list[str], unit: tuple[float, str], log: bool) -> None:
    unplaced = []
    for (source, key, _label), series in cells.groupby(["source", "style_key", "label"], sort=False):
        colour, marker = mixer_style(key)
        style = line_style(sources.index(source))
        done = ok_cells(series).sort_values("seconds")
        y = done["median_ms"] if metric == "latency" else done["peak_bytes"] / unit[0]
        ax.plot(done["seconds"], y, color=colour, marker=marker, linestyle=style, markersize=5, linewidth=1.4)
        if metric == "latency":
            ax.fill_between(done["seconds"], done["p20_ms"], done["p80_ms"], color=colour, alpha=0.18, linewidth=0)
        for _, cell in series[series["status"].isin(NOT_MEASURED)].iterrows():
            y_at = _would_be(done, cell, metric, unit[0])
            if y_at is None:
                unplaced.append((cell, colour, marker))
                continue
            _not_measured(ax, cell["seconds"], y_at, cell["status"], colour, marker)
            if len(done):  # a thin dotted link from the last measured point says "extrapolated"
                ax.plot([done["seconds"].iloc[-1], cell["seconds"]], [y.iloc[-1], y_at], color=colour,
                        linestyle=":", linewidth=0.9)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    # Cells with nothing to place them by go on the panel's top edge (axes coordinates), still at their length.
    for cell, colour, marker in unplaced:
        _not_measured(ax, cell["seconds"], 0.96, f"{cell['status']} (no estimate)", colour, marker,
                      transform=ax.get_xaxis_transform())
    ax.set_xlabel("audio length (s)")
    ax.set_ylabel("median latency (ms), p20-p80 shaded" if metric == "latency" else f"peak memory ({unit[1]})")
    ax.grid(True, which="both", alpha=0.3)
    frames_axis(ax)


def _would_be(done: pd.DataFrame, cell: pd.Series, metric: str, unit: float) -> float | None:
    """Where an unmeasured cell would sit: the cost model's memory, else the series' power law."""
    if metric == "memory" and pd.notna(cell.get("predicted_activation_bytes")):
        element = DTYPE_BYTES.get(cell["dtype"], 4)
        weights = cell.get("weight_bytes")
        baseline = (weights if pd.notna(weights) else 0) + cell["batch"] * cell["frames"] * cell["hidden"] * element
        return (cell["predicted_activation_bytes"] + baseline) / unit
    column = "median_ms" if metric == "latency" else "peak_bytes"
    known = done[done[column] > 0].tail(3)
    if known["frames"].nunique() < 2:
        return None
    exponent, prefactor = power_fit(known["frames"], known[column])
    value = prefactor * cell["frames"] ** exponent
    return value if metric == "latency" else value / unit


def _not_measured(ax, x: float, y: float, status: str, colour: str, marker: str, transform=None) -> None:
    transform = transform or ax.transData
    ax.scatter([x], [y], s=90, marker=marker, facecolors="none", edgecolors=colour, linewidths=1.6, zorder=4,
               transform=transform)
    # Below the marker on the top edge, above it elsewhere: the label stays inside the axes.
    offset = (6, 6) if transform is ax.transData else (6, -12)
    ax.annotate(status, (x, y), xycoords=transform, textcoords="offset points", xytext=offset, fontsize=7,
                color=colour)


def _paper_points(ax, paper: pd.DataFrame, metric: str, with_sa: bool, unit: tuple[float, str]) -> None:
    wanted = "latency" if metric == "latency" else "peak_memory"
    for _, point in paper.iterrows():
        if point["style_key"] == "sa:naive" and not with_sa:
            continue
        if point["metric"] == wanted and isinstance(point["style_key"], str):
            y = point["value"] if metric == "latency" else point["value"] * GIB / unit[0]
            colour, _ = mixer_style(point["style_key"])
            ax.scatter([point["audio_seconds"]], [y], marker="*", s=180, color=colour, edgecolors="white",
                       linewidths=0.8, zorder=5)
            # Labels point inwards, so the ones at 10 s and 400 s stay inside the axes.
            inward = point["audio_seconds"] < 200
            ax.annotate(f"{point['mechanism']} {point['value']:g} {point['unit']} ({point['device']})",
                        (point["audio_seconds"], y), textcoords="offset points", xytext=(8 if inward else -8, 7),
                        ha="left" if inward else "right", fontsize=7, color=colour)
        elif metric == "memory" and point["metric"] == "peak_memory_upper_bound":
            y = point["value"] * GIB / unit[0]
            ax.scatter([point["audio_seconds"]], [y], marker="v", s=70, color="0.35", zorder=5)
            ax.annotate(f"paper: every efficient mixer below {point['value']:g} {point['unit']}",
                        (point["audio_seconds"], y), textcoords="offset points", xytext=(-10, 0), ha="right",
                        va="center", fontsize=7, color="0.35")


def _title(cells: pd.DataFrame) -> str:
    first = cells.iloc[0]
    devices = " | ".join(dict.fromkeys(cells["device_name"].astype(str)))
    return (f"Mixer alone at inference: batch {first['batch']}, {first['dtype']}, hidden {first['hidden']}, "
            f"{first['heads']} heads, {first['mode']}  -  {devices}")


def _legend(cells: pd.DataFrame, sources: list[str], paper: pd.DataFrame | None) -> list:
    from matplotlib.lines import Line2D

    fits = scaling(cells)
    handles = []
    for key in order_keys(cells["style_key"].unique()):
        colour, marker = mixer_style(key)
        labels = list(dict.fromkeys(cells.loc[cells["style_key"] == key, "label"]))
        mine = fits[fits["style_key"] == key]
        alphas = "/".join(f"{a:.2f}" for a in mine["alpha"])
        betas = "/".join("-" if b is None or b != b else f"{b:.2f}" for b in mine["beta"])
        exponents = f"  alpha {alphas}, beta {betas}" if len(mine) else ""
        handles.append(Line2D([], [], color=colour, marker=marker, label=", ".join(labels) + exponents))
    if len(sources) > 1:
        for index, source in enumerate(sources):
            device = cells.loc[cells["source"] == source, "device_name"].iloc[0]
            handles.append(Line2D([], [], color="0.3", linestyle=line_style(index),
                                  label=f"{Path(source).name} ({device})"))
    if cells["status"].isin(NOT_MEASURED).any():
        handles.append(Line2D([], [], color="0.3", marker="o", markerfacecolor="none", linestyle="none",
                              label="hollow: not measured (oom / skipped / timeout), at its prediction or "
                              "extrapolation"))
    failed = cells[cells["status"] == "error"]
    if len(failed):
        handles.append(Line2D([], [], linestyle="none", label=f"not drawn: {len(failed)} cells failed with an error "
                              f"({', '.join(dict.fromkeys(failed['label']))})"))
    for line in precision_notes(cells):
        handles.append(Line2D([], [], linestyle="none", label=textwrap.fill(f"precision: {line}", 110)))
    if paper is not None:
        device = paper["device"].iloc[0] if len(paper) else "?"
        handles.append(Line2D([], [], color="0.3", marker="*", markersize=11, linestyle="none",
                              label=f"the paper's stated points ({device})"))
    handles.append(Line2D([], [], linestyle="none", label="alpha, beta: latency, activation memory ~ "
                          "frames^exponent (longest lengths)"))
    return handles

