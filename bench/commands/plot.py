"""``bench plot``: Figure 2 and the figures beyond it, drawn from results files only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bench.commands.options import ResultsFiles, check_files, fail
from bench.commands.report import LogAxes, Paper, Seconds, Split
from bench.provenance import code_identity_lines, say


def plot(
    files: ResultsFiles,
    out: Annotated[Path, typer.Option(help="Directory the figures are written to.")] = Path("figures"),
    paper: Paper = False,
    log: LogAxes = False,
    pdf: Annotated[bool, typer.Option(help="Also write PDF (PNG and SVG always).")] = False,
    at_seconds: Seconds = None,
    split: Split = None,
    corpus: Annotated[str | None, typer.Option(help="Accuracy-latency figure: accuracy rows of this corpus "
                                               "(default: the corpus/encoder with most rows; the title says).")] = None,
    encoder: Annotated[str | None, typer.Option(help="Accuracy-latency figure: accuracy rows of this speech "
                                                "encoder (as the rows name it, e.g. logmel80).")] = None,
) -> None:
    """Draw Figure 2 (latency and memory against audio length), the cost-model check and, when the
    files hold accuracy rows, accuracy against latency. Several files share the axes, one line style each.

    Example: bench plot results/quick-cpu-*.jsonl --out figures --paper --log
    """
    from plots.figures import all_figures
    from plots.style import save

    paths = check_files(files)
    written = []
    try:
        say(code_identity_lines(paths))
        for name, figure in all_figures(paths, paper=paper, log=log, seconds=at_seconds, split=split,
                                        corpus=corpus, encoder=encoder):
            written += save(figure, out / name, pdf=pdf)
    except ValueError as error:
        fail(str(error))
    for path in written:
        typer.echo(str(path))
