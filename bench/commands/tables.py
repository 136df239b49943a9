"""Rich tables of result rows, shared by ``bench sweep`` and ``bench report``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

MIB = 2**20


def console() -> Console:
    """A console that does not squeeze tables to 80 columns when output goes to a file or pipe."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=160)


def rows_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    for column in ("mixer", "seconds", "frames", "dtype", "status", "median ms", "p20-p80 ms",
                   "peak MiB", "above MiB", "predicted MiB"):
        table.add_column(column, justify="left" if column in ("mixer", "dtype", "status") else "right",
                         no_wrap=column == "mixer")
    for row in rows:
        ok = row["status"] == "ok"
        table.add_row(
            f"{row['mixer']}:{row['kernel']}", f"{row['seconds']:g}", str(row["frames"]), row["dtype"],
            row["status"] if ok else f"[red]{row['status']}[/red]",
            _ms(row.get("median_ms")),
            f"{_ms(row.get('p20_ms'))}-{_ms(row.get('p80_ms'))}" if ok else "",
            _mib(row.get("peak_bytes")), _mib(row.get("peak_above_bytes")),
            _mib(row.get("predicted_activation_bytes")),
        )
    return table


def _ms(value: float | None) -> str:
    # Three significant figures keep sub-millisecond timings readable.
    return "" if value is None else f"{value:.3g}"


def _mib(value: int | None) -> str:
    return "" if value is None else f"{value / MIB:.1f}"
