"""``bench data synth`` and ``bench data summary``: the corpus commands (``data_app``, composed by ``bench/cli.py``
as ``app.add_typer(data_app, name="data")`` and by ``python -m model``).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from model.commands import _fail, _progress


def synth(
    out: Annotated[Path, typer.Option(help="Folder to write wav/, manifest.csv and corpus.json into.")],
    utterances: Annotated[int, typer.Option(help="Utterances to make (at least 48).")] = 1600,
    seed: Annotated[int, typer.Option(help="Same seed, same corpus, byte for byte.")] = 0,
    min_seconds: Annotated[float, typer.Option(help="Shortest utterance.")] = 2.5,
    max_seconds: Annotated[float, typer.Option(help="Longest utterance.")] = 6.0,
    text_cue: Annotated[float, typer.Option(help="Probability that a transcript word carries the class.")] = 0.5,
) -> None:
    """Make the synthetic emotional-speech corpus (8 classes, speaker-independent splits).

    Example: bench data synth --out data/synth --utterances 800
    """
    from model.synthetic import synthesize

    console = Console()
    try:
        with _progress(console, metrics=False) as bar:
            task = bar.add_task("synthesizing", total=utterances)
            manifest = synthesize(out, utterances, seed, (min_seconds, max_seconds), text_cue,
                                  on_utterance=lambda _: bar.advance(task))
    except ValueError as error:
        _fail(str(error))
    console.print(f"{utterances} utterances -> {manifest}")


class SummaryFormat(StrEnum):
    table = "table"
    json = "json"


def summary(
    corpus: Annotated[str, typer.Argument(help="KIND:PATH[?option=value&...]: msp-podcast:ROOT, ravdess:ROOT, "
                                          "csv:FILE, synthetic:DIR (or a DIR holding manifest.csv).")],
    fmt: Annotated[SummaryFormat, typer.Option("--format", help="table (rich) or json.")] = SummaryFormat.table,
    fold: Annotated[int | None, typer.Option(help="RAVDESS fold 1-5 (the ResLSTM-SA paper's actor splits).")] = None,
) -> None:
    """Utterances per split and class, hours of audio, speakers, and what was dropped and why.

    Example: bench data summary ravdess:data/RAVDESS --fold 2 --format json
    """
    from model.corpora.summary import count_files
    from model.data import open_corpus, summarize

    try:
        source = open_corpus(corpus, **({} if fold is None else {"fold": fold}))
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("reading durations", total=count_files(source))
            result = summarize(source, on_file=lambda: bar.advance(task))
    except ValueError as error:
        _fail(str(error))
    if fmt == SummaryFormat.json:
        typer.echo(json.dumps(result, indent=2))
        return
    console = Console()
    for table in _summary_tables(result):
        console.print(table)


def _summary_tables(s: dict) -> list[Table]:
    """Utterances, hours, speakers and each class's count per split (columns), with a total; then drops."""
    splits = Table(title=f"{s['corpus']}: {s['spec']}")
    for column in ("", *s["by_split"], "total"):
        splits.add_column(column, justify="left" if not column else "right")
    rows = [("utterances", s["by_split"], s["utterances"]),
            ("hours", {k: f"{h:.3f}" for k, h in s["hours_by_split"].items()}, f"{s['hours']:.3f}"),
            ("speakers", s["speakers_by_split"], s["speakers"])]
    rows += [(c, {k: counts[c] for k, counts in s["by_split_class"].items()}, s["by_class"][c]) for c in s["classes"]]
    for i, (name, per_split, total) in enumerate(rows):
        splits.add_row(name, *[str(v) for v in per_split.values()], str(total), end_section=i == 2)
    dropped = Table(title=f"dropped: {sum(s['dropped'].values())}; unknown speaker: "
                          f"{s['unknown_speaker_utterances']}; unreadable audio: {s['unreadable']}")
    dropped.add_column("reason")
    dropped.add_column("count", justify="right")
    for reason, n in s["dropped"].items():
        dropped.add_row(reason, str(n))
    return [splits, dropped]


data_app = typer.Typer(help="Corpora: summarize them, make synthetic ones.", no_args_is_help=True)
data_app.command("synth")(synth)
data_app.command("summary")(summary)
