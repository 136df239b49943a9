"""``bench report``: the cells of results files, their scaling exponents and crossovers.

Terminal (rich, one table per device), CSV, JSON or Markdown for other tools, and a
self-contained HTML page with the figures embedded.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bench.commands.options import ResultsFiles, check_files, fail
from bench.commands.tables import console, frame_table, print_notes
from bench.provenance import code_identity_lines, say

Seconds = Annotated[float | None, typer.Option("--at-seconds", help="Accuracy-latency figure: audio length "
                                               "of the latency axis. Default: the longest measured for all.")]
Split = Annotated[str | None, typer.Option(help="Accuracy rows' split for the accuracy-latency figure "
                                           "(default: test when present).")]
Paper = Annotated[bool, typer.Option(help="Overlay the paper's stated Figure 2 points (NVIDIA H100).")]
LogAxes = Annotated[bool, typer.Option("--log", help="Figure 2 on log-log axes (power laws become lines).")]


FIRST_CALLS_TITLE = "First call per file: compiling and autotuning, before any timed call"


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"


class Section(StrEnum):
    cells = "cells"
    scaling = "scaling"
    crossovers = "crossovers"
    first_calls = "first_calls"


def report(
    files: ResultsFiles,
    fmt: Annotated[Format, typer.Option("--format", help="table (rich), csv, json or markdown.")] = Format.table,
    section: Annotated[Section, typer.Option(help="With --format csv: which table to print.")] = Section.cells,
    html: Annotated[Path | None, typer.Option("--html", help="Also write one self-contained HTML page "
                                              "(tables and figures embedded) to this path.")] = None,
    paper: Paper = False,
    log: LogAxes = False,
    at_seconds: Seconds = None,
    split: Split = None,
) -> None:
    """Tables of results files: every cell, alpha/beta scaling exponents, crossovers against SA, first calls.
    Each file's code (and whether its rows come from different code) is named on stderr.

    Example: bench report results/quick-cpu-*.jsonl --html report.html
    """
    from plots.load import load_cells
    from plots.summary import sections

    paths = check_files(files)
    try:
        cells = load_cells(*paths)
        tables = sections(cells)
    except ValueError as error:
        fail(str(error))
    say(code_identity_lines(paths))
    {Format.table: _rich, Format.csv: _csv, Format.json: _json, Format.markdown: _markdown}[fmt](
        cells, tables, section)
    if html is not None:
        from plots.page import html_page

        try:
            page = html_page(paths, paper=paper, log=log, seconds=at_seconds, split=split)
        except ValueError as error:
            fail(str(error))
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(page, encoding="utf-8")
        typer.echo(f"wrote {html}", err=True)


def _rich(cells, tables, section) -> None:
    from plots.firstcall import first_calls_display
    from plots.precision import notes
    from plots.summary import cells_display, crossovers_display, device_groups, scaling_display

    screen = console()
    for title, group in device_groups(cells):
        screen.print(frame_table(cells_display(group), title=title))
        print_notes(screen, group)
    for line in notes(cells):
        screen.print(f"[yellow]precision:[/yellow] {line}", highlight=False)
    if len(tables["scaling"]):
        screen.print(frame_table(scaling_display(tables["scaling"]), title="Scaling: latency ~ frames^alpha, "
                                 "activation memory ~ frames^beta (longest lengths)"))
    else:
        screen.print("Scaling: no series with three or more measured lengths.")
    if len(tables["crossovers"]):
        screen.print(frame_table(crossovers_display(tables["crossovers"]),
                                 title="Crossovers: where each efficient mixer becomes faster than SA"))
    if len(tables["first_calls"]):
        screen.print(frame_table(first_calls_display(tables["first_calls"]), title=FIRST_CALLS_TITLE))


def _csv(cells, tables, section) -> None:
    tables[section.value].to_csv(sys.stdout, index=False)


def _json(cells, tables, section) -> None:
    from plots.summary import records

    print(json.dumps({name: records(table) for name, table in tables.items()}, indent=1))


def _markdown(cells, tables, section) -> None:
    from plots.firstcall import first_calls_display
    from plots.notes import markdown_notes
    from plots.precision import notes
    from plots.summary import cells_display, crossovers_display, device_groups, markdown, scaling_display

    parts = []
    for title, group in device_groups(cells):
        parts += [f"### {title}", "", markdown(cells_display(group)), "", *markdown_notes(group)]
    precision = [f"> precision: {line}" for line in notes(cells)]
    parts += precision + ([""] if precision else [])
    if len(tables["scaling"]):
        parts += ["### Scaling exponents", "", markdown(scaling_display(tables["scaling"])), ""]
    if len(tables["crossovers"]):
        parts += ["### Crossovers against softmax attention", "", markdown(crossovers_display(tables["crossovers"])),
                  ""]
    if len(tables["first_calls"]):
        parts += [f"### {FIRST_CALLS_TITLE}", "", markdown(first_calls_display(tables["first_calls"])), ""]
    print("\n".join(parts))
