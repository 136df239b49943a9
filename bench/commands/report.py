"""``bench report``: a table of the cells in results files."""

from __future__ import annotations

from bench.commands.options import ResultsFiles, check_files
from bench.commands.tables import console, rows_table
from bench.results import read_rows


def report(files: ResultsFiles) -> None:
    """Print the cells of each results file as a table."""
    out_console = console()
    for path in check_files(files):
        headers = read_rows(path, "header")
        device = headers[0].get("device_name", "?") if headers else "?"
        out_console.print(rows_table(read_rows(path), title=f"{path} ({device})"))
