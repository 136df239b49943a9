"""``bench reslstm-sa``: the ResLSTM-SA seed system's cross-validation, one command.

``bench/cli.py`` composes it (``app.command("reslstm-sa")(reslstm_sa)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from model.commands import RESULTS, Device, Results, _device, _fail


def _integers(text: str, option: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        _fail(f"{option} expects comma-separated integers, e.g. 0,1,2; got {text!r}")
    if not values:
        _fail(f"{option} is empty")
    return values


def reslstm_sa(
    corpus: Annotated[str, typer.Option(help="ravdess:ROOT (the RAVDESS audio release: Actor_XX/*.wav).")],
    out: Annotated[Path, typer.Option(help="Run folder: settings, feature cache, each (seed, fold)'s predictions. "
                                      "Rerunning the command resumes it.")],
    seeds: Annotated[str, typer.Option(help="Seeds, each a whole cross-validation (paper: 10 seeds).")] = "0",
    folds: Annotated[str, typer.Option(help="Folds to run, of 1-5 (the paper's speaker-independent folds).")]
    = "1,2,3,4,5",
    epochs: Annotated[int, typer.Option(help="Epochs per fold (authors: 100).")] = 100,
    hidden: Annotated[int, typer.Option(help="Width of the second LSTM: 64 is ResLSTM-SA-h64.")] = 64,
    batch_size: Annotated[int, typer.Option(help="Batch size (ours; authors' search: 8-64).")] = 16,
    lr: Annotated[float, typer.Option(help="Adam learning rate (ours; authors' search: 3e-5 to 2e-4).")] = 1e-4,
    weight_decay: Annotated[float, typer.Option(help="Adam weight decay (ours; authors' search: 2e-5 to "
                                                "2e-2).")] = 1e-3,
    dropout: Annotated[float, typer.Option(help="Dropout before the classifier (ours; search 0.1-0.5).")] = 0.3,
    t0: Annotated[int, typer.Option("--t0", help="Epochs per cosine cycle, T_0 (ours; search 1, 2, 3, 5, 10).")]
    = 10,
    norm: Annotated[str, typer.Option(help="Feature standardisation: corpus (all frames, as the authors) or "
                                      "train (each fold's training frames).")] = "corpus",
    threads: Annotated[int | None, typer.Option(help="CPU threads for PyTorch.")] = None,
    device: Device = None,
    results: Results = RESULTS,
) -> None:
    """ResLSTM-SA on RAVDESS: 5-fold speaker-independent CV, UAR pooled over out-of-fold predictions.

    Example: bench reslstm-sa --corpus ravdess:data/RAVDESS --out runs/reslstm-sa --seeds 0,1,2,3,4,5,6,7,8,9
    """
    import torch

    from model.crossval import PAPER_UAR, CVConfig
    from model.crossval_run import run

    seed_list, fold_list = _integers(seeds, "--seeds"), _integers(folds, "--folds")
    if threads is not None:
        if threads < 1:
            _fail(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    config = CVConfig(corpus=corpus, hidden=hidden, epochs=epochs, batch_size=batch_size, lr=lr,
                      weight_decay=weight_decay, dropout=dropout, t0=t0, norm=norm)
    console = Console()
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn()]
    try:
        with Progress(*columns, console=console) as bar:
            def progress(description: str, total: int):
                task = bar.add_task(description, total=total, status="")

                def tick(loss: float | None = None, uar: float | None = None) -> None:
                    status = "" if loss is None else f"loss {loss:.4f} validation UAR {uar:.4f}"
                    bar.update(task, advance=1, status=status)
                return tick

            summary = run(config, out, seed_list, fold_list, results, bar.console.print, progress, _device(device))
    except ValueError as error:
        _fail(str(error))
    console.print(_table(summary, fold_list))
    mean, std, best = PAPER_UAR
    console.print(f"ours:  pooled UAR {summary.mean:.4f} ± {summary.std:.4f} over {len(seed_list)} seed(s), "
                  f"best {summary.best:.4f}" + ("" if sorted(fold_list) == [1, 2, 3, 4, 5] else
                                                f" (folds {','.join(map(str, fold_list))} only)"))
    console.print(f"paper: pooled UAR {mean:.4f} ± {std:.4f} over 10 seeds, best {best:.4f} (ResLSTM-SA-h64)")


def _table(summary, folds: list[int]) -> Table:
    table = Table(title="ResLSTM-SA: test UAR per fold and pooled out of fold")
    for column in ("seed", *(f"fold {k}" for k in folds), "pooled"):
        table.add_column(column, justify="right")
    for seed, by_fold in summary.folds.items():
        table.add_row(str(seed), *(f"{by_fold[k].uar:.4f}" for k in folds), f"{summary.pooled_uar[seed]:.4f}")
    return table
