"""The cost-model check: each mixer's analytical cost (``mixers.cost``) against what was measured.

Left: measured activation peak (the memory probe's bytes above weights and input) against the
predicted activation bytes, one point per cell, with the line of perfect prediction and the +-25%
band the mixers' tests hold predictions to at 100 s and longer. Right: achieved FLOP/s, the
predicted FLOPs of a forward pass over its measured median time, against audio length; a
mixer far below the others at the same FLOP count is bound by something other than arithmetic
(memory traffic, a sequential scan, Python overhead).
"""

from __future__ import annotations

import pandas as pd

from plots.analysis import cost_check
from plots.load import check_one_setting
from plots.style import line_style, mixer_style

MIB = 2**20
TOLERANCE = 0.25


def cost_model_figure(cells: pd.DataFrame):
    from matplotlib.figure import Figure

    check_one_setting(cells, "The cost-model figure")
    table = cost_check(cells)
    sources = list(dict.fromkeys(cells["source"]))
    figure = Figure(figsize=(13, 5.5), layout="constrained")
    memory, speed = figure.subplots(1, 2)
    for (source, key, label), series in table.groupby(["source", "style_key", "label"], sort=False):
        colour, marker = mixer_style(key)
        series = series.sort_values("seconds")
        both = series[series["memory_ratio"].notna()]
        memory.scatter(both["predicted_activation_bytes"] / MIB, both["peak_above_bytes"] / MIB, color=colour,
                       marker=marker, s=36, label=label if sources.index(source) == 0 else None)
        speed.plot(series["seconds"], series["achieved_flops"] / 1e9, color=colour, marker=marker,
                   linestyle=line_style(sources.index(source)), label=label if sources.index(source) == 0 else None)
    _identity(memory, table)
    memory.set_xscale("log")
    memory.set_yscale("log")
    memory.set_xlabel("predicted activation memory (MiB)")
    memory.set_ylabel("measured peak above weights and input (MiB)")
    memory.set_title("(a) memory: measured against the cost model", loc="left")
    speed.set_yscale("log")
    speed.set_xlabel("audio length (s)")
    speed.set_ylabel("achieved GFLOP/s (cost-model FLOPs / median time)")
    speed.set_title("(b) achieved FLOP/s", loc="left")
    for ax in (memory, speed):
        ax.grid(True, which="both", alpha=0.3)
    memory.legend(fontsize=8)
    devices = " | ".join(dict.fromkeys(cells["device_name"].astype(str)))
    first = cells.iloc[0]
    figure.suptitle(f"Cost model check: {first['dtype']}, batch {first['batch']}, hidden {first['hidden']}, "
                    f"{first['heads']} heads  -  {devices}", fontsize=11)
    return figure


def _identity(ax, table: pd.DataFrame) -> None:
    values = pd.concat([table["predicted_activation_bytes"], table["peak_above_bytes"]]).dropna() / MIB
    values = values[values > 0]
    if values.empty:
        ax.text(0.5, 0.5, "no cell carries both a prediction and a measured peak", ha="center",
                transform=ax.transAxes, color="0.4")
        return
    low, high = values.min() / 1.5, values.max() * 1.5
    ax.plot([low, high], [low, high], color="0.3", linewidth=1, label="measured = predicted")
    ax.fill_between([low, high], [low * (1 - TOLERANCE), high * (1 - TOLERANCE)],
                    [low * (1 + TOLERANCE), high * (1 + TOLERANCE)], color="0.5", alpha=0.15, linewidth=0,
                    label=f"within {TOLERANCE:.0%}")
