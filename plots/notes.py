"""Why cells did not measure: the messages of ``error``, ``oom``, ``timeout`` and ``skipped`` rows.

A status alone does not tell a reader whether a kernel library refused the GPU, the cost model
predicted no room, or a cell hung. Every report format shows these lines under its table of cells.
One line per mixer, dtype, status and message, listing the lengths it covers, so seven rows that
failed alike read as one line.
"""

from __future__ import annotations

import html

import pandas as pd

NO_MESSAGE = "(the row gives no message)"


def unmeasured_notes(cells: pd.DataFrame) -> list[str]:
    """``fox:fla fp32 error at 10, 25 s: OutOfResources: ...`` for each group of rows that did not measure."""
    failed = cells[cells["status"] != "ok"]
    if failed.empty:
        return []
    messages = failed["message"] if "message" in failed else pd.Series(None, index=failed.index, dtype=object)
    failed = failed.assign(note=[_one_line(m) for m in messages])
    lines = []
    for (label, dtype, status, note), group in failed.groupby(["label", "dtype", "status", "note"], sort=False):
        lengths = ", ".join(f"{s:g}" for s in sorted(group["seconds"].unique()))
        lines.append(f"{label} {dtype} {status} at {lengths} s: {note}")
    return lines


def markdown_notes(cells: pd.DataFrame) -> list[str]:
    """The notes as Markdown lines (a bullet list, then a blank line), or nothing when all measured."""
    notes = unmeasured_notes(cells)
    return ["Not measured:", "", *(f"- {line}" for line in notes), ""] if notes else []


def html_notes(cells: pd.DataFrame) -> str:
    """The notes as an HTML list (escaped), or an empty string when all measured."""
    notes = unmeasured_notes(cells)
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in notes)
    return f"<p class='note'>Not measured:</p><ul class='note'>{items}</ul>"


def _one_line(message) -> str:
    """Messages may hold a traceback's newlines; a note is one line."""
    if message is None or (isinstance(message, float) and message != message) or not str(message).strip():
        return NO_MESSAGE
    return " ".join(str(message).split())
