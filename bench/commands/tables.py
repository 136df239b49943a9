"""Rich tables of result rows, shared by ``bench sweep``, ``bench report`` and ``bench compare``.

The columns and number formats come from ``plots.summary``, so the terminal, Markdown and HTML
show the same table.
"""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

LEFT = ("mixer", "versus", "device", "dtype", "status", "verdict", "fitted over", "faster than SA from")


def console() -> Console:
    """A console that does not squeeze tables to 80 columns when output goes to a file or pipe."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=160)


def rows_table(rows: list[dict], title: str) -> Table:
    """One line per cell: latency, memory, and the cost model's prediction beside them."""
    from plots.load import prepare_cells
    from plots.summary import cells_display

    if not rows:
        return frame_table(pd.DataFrame(), title)
    return frame_table(cells_display(prepare_cells(pd.DataFrame(rows))), title)


def frame_table(display: pd.DataFrame, title: str, caption: str | None = None) -> Table:
    """A table of already formatted strings; statuses and verdicts other than ok/same in colour."""
    table = Table(title=title, caption=caption)
    for column in display.columns:
        table.add_column(column, justify="left" if column in LEFT else "right", no_wrap=column == "mixer")
    for row in display.itertuples(index=False):
        table.add_row(*(_colour(column, str(value)) for column, value in zip(display.columns, row)))
    return table


def print_notes(screen: Console, cells: pd.DataFrame) -> None:
    """Under a table of cells: why each cell that did not measure did not (``plots.notes``)."""
    from plots.notes import unmeasured_notes

    notes = unmeasured_notes(cells)
    if notes:
        screen.print("Not measured:", style="red")
    for line in notes:
        # Messages are the libraries' own words: "[Errno 32]" must not be read as rich markup.
        screen.print(f"  {line}", markup=False, highlight=False)


def _colour(column: str, value: str) -> str:
    if column == "status" and value != "ok":
        return f"[red]{value}[/red]"
    if column == "verdict":
        return {"slower": "[red]slower[/red]", "faster": "[green]faster[/green]"}.get(value, value)
    return value
