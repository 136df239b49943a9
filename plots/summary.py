"""The report's tables, once: numeric for exports (CSV, JSON) and formatted for reading (terminal,
Markdown, HTML), so every output of ``bench report`` shows the same columns and the same digits.

Sections: ``cells`` (one row per cell, the cost-model check beside the measurement), ``scaling``
(alpha, beta per series), ``crossovers`` (efficient mixer against each SA kernel) and
``first_calls`` (each series' first call per file: compilation and autotuning, ``plots.firstcall``).
"""

from __future__ import annotations

import json
import math

import pandas as pd

from plots.analysis import achieved_flops, cell_table, crossovers, describe_crossover, memory_ratio, scaling
from plots.firstcall import first_calls

SECTIONS = ("cells", "scaling", "crossovers", "first_calls")
MIB = 2**20


def sections(cells: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Numeric tables, one per section."""
    return {"cells": cell_table(cells), "scaling": scaling(cells), "crossovers": crossovers(cells),
            "first_calls": first_calls(cells)}


def ms(value) -> str:
    return "" if _missing(value) else significant(value)


def significant(value: float) -> str:
    """Three significant figures keep sub-millisecond timings readable; no exponents above 1000."""
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def mib(value) -> str:
    return "" if _missing(value) else f"{value / MIB:.1f}"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def cells_display(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per cell, as people read it: ``status`` stays raw so renderers can colour it."""
    rows = []
    for _, row in cells.iterrows():
        ok = row["status"] == "ok"
        ratio = memory_ratio(row.get("peak_above_bytes"), row.get("predicted_activation_bytes"))
        flops = achieved_flops(row.get("predicted_flops"), row.get("median_ms")) if ok else None
        rows.append({
            "mixer": row["label"], "seconds": f"{row['seconds']:g}", "frames": str(row["frames"]),
            "dtype": row["dtype"], "status": row["status"], "median ms": ms(row.get("median_ms")),
            "p20-p80 ms": f"{ms(row.get('p20_ms'))}-{ms(row.get('p80_ms'))}" if ok else "",
            "peak MiB": mib(row.get("peak_bytes")), "above MiB": mib(row.get("peak_above_bytes")),
            "predicted MiB": mib(row.get("predicted_activation_bytes")),
            "measured/predicted": "" if ratio is None else f"{ratio:.2f}",
            "GFLOP/s": "" if flops is None else significant(flops / 1e9),
            "J/call": ms(row.get("energy_j_per_call")),
        })
    return pd.DataFrame(rows, columns=["mixer", "seconds", "frames", "dtype", "status", "median ms", "p20-p80 ms",
                                       "peak MiB", "above MiB", "predicted MiB", "measured/predicted", "GFLOP/s",
                                       "J/call"])


def scaling_display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "mixer": table["label"], "device": table["device_name"], "dtype": table["dtype"],
        "fitted over": [f"{a:g}-{b:g} s ({n} lengths)" for a, b, n in zip(table["from_s"], table["to_s"],
                                                                           table["points"])],
        "alpha (latency)": [f"{a:.2f}" for a in table["alpha"]],
        "beta (activation memory)": ["" if _missing(b) else f"{b:.2f}" for b in table["beta"]],
    }, columns=["mixer", "device", "dtype", "fitted over", "alpha (latency)", "beta (activation memory)"])


def crossovers_display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "mixer": table["label"], "versus": table["versus"], "device": table["device_name"], "dtype": table["dtype"],
        "faster than SA from": [describe_crossover(row) for _, row in table.iterrows()],
        "frames": ["" if _missing(f) else f"{f:.0f}" for f in table["crossover_frames"]],
        "speed-up at longest": [f"{x:.2f}x at {s:g} s" for x, s in zip(table["speedup_at_longest"], table["to_s"])],
    }, columns=["mixer", "versus", "device", "dtype", "faster than SA from", "frames", "speed-up at longest"])


def device_groups(cells: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(title, cells) per file and device: the report's one table per device."""
    return [(f"{device} ({source})", group) for (source, device), group in
            cells.groupby(["source", "device_name"], sort=False)]


def records(table: pd.DataFrame) -> list[dict]:
    """JSON-safe rows: NaN becomes null."""
    return json.loads(table.to_json(orient="records"))


def markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""
    def cell(value) -> str:
        return "" if _missing(value) else str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)
