"""The energy figure: joules per call and mean power of each mixer against audio length.

(a) energy per call, what a deployment pays per utterance beside its latency; (b) the mean power
over the energy window, which tells a mixer that is slow because it keeps the device busy from one
that waits (launch overhead, a sequential scan) and draws little. Only ok cells that carry a
reading are drawn; the counter and what it covers (``energy_source``: nvml, the whole GPU board;
rapl, the CPU packages) are named in the title, since the two are not comparable.
"""

from __future__ import annotations

import pandas as pd

from plots.analysis import ok_cells
from plots.load import check_one_setting
from plots.style import frames_axis, line_style, mixer_style

SOURCES = {"nvml": "NVML, whole GPU board", "rapl": "RAPL, CPU packages"}


def has_energy(cells: pd.DataFrame) -> bool:
    return "energy_j_per_call" in cells and bool(ok_cells(cells)["energy_j_per_call"].notna().any())


PANELS = (("energy_j_per_call", "energy per call (J)", "(a) energy per call"),
          ("power_w_mean", "mean power over the energy window (W)", "(b) mean power"))


def energy_figure(cells: pd.DataFrame, log: bool = False):
    from matplotlib.figure import Figure

    check_one_setting(cells, "The energy figure")
    measured = ok_cells(cells)
    measured = measured[measured["energy_j_per_call"].notna()]
    if measured.empty:
        raise ValueError("no ok cell carries an energy reading (energy_j_per_call); the header's energy entry "
                         "says why")
    figure = Figure(figsize=(13, 5.5), layout="constrained")
    axes = figure.subplots(1, 2)
    for ax, panel in zip(axes, PANELS):
        _panel(ax, measured, list(dict.fromkeys(cells["source"])), *panel, log=log)
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    figure.suptitle(_title(cells, measured), fontsize=11)
    return figure


def _panel(ax, measured: pd.DataFrame, sources: list[str], column: str, ylabel: str, title: str, log: bool) -> None:
    """One line per file and mixer; the legend names each mixer once (the first file's line)."""
    for (source, key, label), series in measured.groupby(["source", "style_key", "label"], sort=False):
        colour, marker = mixer_style(key)
        ordered = series.sort_values("seconds")
        ax.plot(ordered["seconds"], ordered[column], color=colour, marker=marker,
                linestyle=line_style(sources.index(source)), label=label if sources.index(source) == 0 else None)
    if log:
        ax.set_xscale("log")
    ax.set(xlabel="audio length (s)", ylabel=ylabel)
    ax.set_title(title, loc="left")
    ax.grid(True, which="both", alpha=0.3)
    frames_axis(ax)


def _title(cells: pd.DataFrame, measured: pd.DataFrame) -> str:
    first = cells.iloc[0]
    devices = " | ".join(dict.fromkeys(cells["device_name"].astype(str)))
    counters = ", ".join(SOURCES.get(s, str(s)) for s in dict.fromkeys(measured["energy_source"]))
    return (f"Energy ({counters}): {first['dtype']}, batch {first['batch']}, hidden {first['hidden']}, "
            f"{first['heads']} heads, {first['mode']}  -  {devices}")


def describe_header(entry: dict | None) -> str:
    """A results header's ``energy`` entry in one line: the counter and its period, or why there is none."""
    if not entry:
        return "not recorded (file written before energy was measured)"
    if entry.get("source") is None:
        return f"none: {entry.get('reason')}"
    return f"{entry['source']}: {entry.get('scope')}, counter updates every {entry['update_period_s'] * 1e3:.3g} ms"
