"""Every figure a set of results files supports, by name: what ``bench plot`` saves and reports embed.

- ``figure2[-settings]``: Figure 2, one per settings combination (dtype, batch, width, heads, mode).
- ``cost_model[-settings]``: the cost-model check.
- ``energy[-settings]``: joules per call and mean power, when cells carry energy readings.
- ``accuracy_latency[-settings]``: when the files hold accuracy rows that match measured cells.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from plots.costmodel import cost_model_figure
from plots.energy import energy_figure, has_energy
from plots.figure2 import figure2
from plots.load import by_settings, load_accuracy, load_cells, load_paper_points
from plots.tradeoff import accuracy_latency_figure


def all_figures(paths: list[Path], paper: bool = False, log: bool = False, seconds: float | None = None,
                split: str | None = None, corpus: str | None = None,
                encoder: str | None = None) -> Iterator[tuple[str, object]]:
    """(name, matplotlib Figure) for each figure the files support, drawn one at a time."""
    cells = load_cells(*paths)
    accuracy = load_accuracy(*paths)
    points = load_paper_points() if paper else None
    for suffix, group in by_settings(cells):
        yield f"figure2{suffix}", figure2(group, paper=points, log=log)
        if group["predicted_activation_bytes"].notna().any():
            yield f"cost_model{suffix}", cost_model_figure(group)
        if has_energy(group):
            yield f"energy{suffix}", energy_figure(group, log=log)
        if not accuracy.empty and _matches(group, accuracy):
            yield f"accuracy_latency{suffix}", accuracy_latency_figure(group, accuracy, seconds, split, corpus,
                                                                            encoder)


def _matches(cells, accuracy) -> bool:
    measured = set(zip(cells.loc[cells["status"] == "ok", "mixer"], cells.loc[cells["status"] == "ok", "kernel"]))
    return bool(measured & set(zip(accuracy["mixer"], accuracy["kernel"])))
