"""One self-contained HTML page of a set of results files: run metadata, tables and figures.

Figures are embedded as base64 PNG data URIs and the style sheet is inline, so the page opens
offline, from an e-mail attachment or a CI artifact, with nothing else beside it.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from bench.provenance import code_identity_lines
from plots.energy import describe_header
from plots.figures import all_figures
from plots.firstcall import first_calls_display
from plots.load import load_cells, load_headers
from plots.notes import html_notes
from plots.precision import notes as precision_notes
from plots.summary import cells_display, crossovers_display, device_groups, scaling_display, sections

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #ddd; }
code { background: #f6f6f6; padding: 0 3px; }
.note { color: #555; font-size: 13px; }
"""
RUN_FIELDS = ("device_name", "host", "started", "torch", "fla", "triton", "cuda", "command")


def html_page(paths: list[Path], paper: bool = False, log: bool = False, seconds: float | None = None,
              split: str | None = None) -> str:
    cells = load_cells(*paths)
    tables = sections(cells)
    body = [f"<h1>mixbench report</h1><p class='note'>Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from "
            f"{len(paths)} results file(s), {len(cells)} cells. Latency in ms (median, p20-p80 over repeated "
            "calls), memory in MiB (2<sup>20</sup> bytes).</p>",
            "<h2>Runs</h2>", _table(_runs(paths))]
    for title, group in device_groups(cells):
        body += [f"<h2>Cells: {html.escape(title)}</h2>", _table(cells_display(group)), html_notes(group)]
    body += [f"<p class='note'><b>precision:</b> {html.escape(line)}</p>" for line in precision_notes(cells)]
    body += ["<h2>Scaling exponents</h2><p class='note'>latency ~ frames<sup>alpha</sup>, activation memory ~ "
             "frames<sup>beta</sup>, least squares on log-log axes over each series' longest lengths.</p>",
             _table(scaling_display(tables["scaling"])) if len(tables["scaling"]) else _none("three lengths")]
    body += ["<h2>Crossovers against softmax attention</h2>",
             _table(crossovers_display(tables["crossovers"])) if len(tables["crossovers"])
             else _none("an efficient mixer and an SA kernel measured at the same lengths")]
    if len(tables["first_calls"]):
        body += ["<h2>First call per file (compiling, autotuning)</h2>",
                 _table(first_calls_display(tables["first_calls"]))]
    body.append("<h2>Figures</h2>")
    for name, figure in all_figures(list(paths), paper=paper, log=log, seconds=seconds, split=split):
        body.append(f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,{_png(figure)}'>"
                    f"<figcaption>{html.escape(name)}</figcaption></figure>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>mixbench report</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")


def _runs(paths: list[Path]) -> pd.DataFrame:
    rows = []
    # Each file's code in words, "MIXED CODE" when its rows come from several (bench.provenance).
    codes = [line.removeprefix(f"{path}: ") for path, (line, _) in zip(paths, code_identity_lines(list(paths)))]
    for header, code in zip(load_headers(*paths), codes):
        rows.append({"file": Path(header["source"]).name, **{f: header.get(f, "") for f in RUN_FIELDS},
                     "code": code, "energy": describe_header(header.get("energy"))})
    return pd.DataFrame(rows)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, na_rep="", border=0, escape=True)


def _none(what: str) -> str:
    return f"<p class='note'>None: needs {html.escape(what)}.</p>"


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
