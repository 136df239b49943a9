"""``bench train``, ``bench evaluate`` and ``bench table1``: the model package's commands, and the options and
helpers its other command modules share (``data_commands``, ``cache_commands``, ``systems_commands``).

``bench/cli.py`` composes them (``app.command("train")(train)``, ``app.command("evaluate")(evaluate)``,
``app.add_typer(data_app, name="data")`` from ``model.data_commands``); ``python -m model`` composes the
same functions, which is what ``torchrun`` launches for data-parallel training.
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

from bench.errors import fail as _fail

RESULTS = Path("results") / "accuracy.jsonl"

Corpus = Annotated[str | None, typer.Option(help="KIND:PATH[?option=value&...]: msp-podcast:ROOT, ravdess:ROOT "
                                             "(?fold=1..5), csv:FILE, synthetic:DIR; or a DIR with manifest.csv.")]
Results = Annotated[Path, typer.Option(help="JSON-lines results file that accuracy rows are appended to.")]
Device = Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N. Default: cuda when present, else cpu.")]
SkipBad = Annotated[bool, typer.Option("--skip-bad-audio", help="Skip unreadable audio files (and count them) "
                                       "instead of stopping at the first.")]


def _device(device: str | None) -> str:
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        _fail("CUDA was asked for but this machine has no usable CUDA device; use --device cpu")
    return device


def train(
    out: Annotated[Path, typer.Option(help="Run folder: configuration, checkpoints, log, metrics.jsonl.")],
    corpus: Corpus = None,
    mixer: Annotated[str, typer.Option(help="Mixer as name[:kernel], e.g. sa, sa:naive, kda:torch; several, "
                                       "comma-separated, train one run each (OUT/<encoder>/<mixer>/).")] = "sa",
    preset: Annotated[str, typer.Option(help="paper (the paper's recipe) or smoke (2-core CPU sizes).")] = "paper",
    epochs: Annotated[int | None, typer.Option(help="Training epochs (paper: 20).")] = None,
    crop_seconds: Annotated[float | None, typer.Option(help="Random crop length in seconds (paper: 5.5).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (paper: 32).")] = None,
    lr: Annotated[float | None, typer.Option(help="AdamW learning rate (paper: 1e-4).")] = None,
    patience: Annotated[int | None, typer.Option(help="Epochs without improvement before the lr halves "
                                                 "(paper: 5).")] = None,
    class_weighted: Annotated[bool | None, typer.Option("--class-weighted/--no-class-weighted",
                                                        help="Class-balanced cross-entropy.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for weights, data order, crops and dropout.")] = None,
    width: Annotated[int | None, typer.Option(help="Model width D (paper: 1024).")] = None,
    heads: Annotated[int | None, typer.Option(help="Mixer heads (paper: 4).")] = None,
    dropout: Annotated[float | None, typer.Option(help="Dropout (paper: 0.4).")] = None,
    budget: Annotated[int | None, typer.Option(help="Trainable-parameter budget that sets the depth "
                                               "(paper: 20M).")] = None,
    depth: Annotated[int | None, typer.Option(help="Mixer blocks; overrides the budget.")] = None,
    ffn: Annotated[int | None, typer.Option(help="Feed-forward sublayer after each mixer, as a multiple "
                                            "of the width; 0: none (default).")] = None,
    speech_encoder: Annotated[str | None, typer.Option(help="Speech front end: logmel, or hf:NAME_OR_PATH (a "
                                                       "Hugging Face hub name or local folder, frozen); NAME+f0 "
                                                       "adds F0 bins; several, comma-separated, make a grid "
                                                       "with --mixer.")] = None,
    layer: Annotated[str | None, typer.Option(help="Speech layer: last, all (learned weighted sum) or a hidden-"
                                              "state index; default last, or the cache's.")] = None,
    text_encoder: Annotated[str | None, typer.Option(help="Text front end: none, words or hf:NAME_OR_PATH.")] = None,
    features: Annotated[str | None, typer.Option(help="A feature cache (bench features extract) to read instead of "
                                                 "encoding; it fixes the corpus and encoders.")] = None,
    eval_batch_size: Annotated[int | None, typer.Option(help="Evaluation batch (paper: 1; larger gives the "
                                                        "same predictions, faster).")] = None,
    fusion: Annotated[str | None, typer.Option(help="concat (the paper: U = [S; E] + mixer stack) or gat "
                                               "(graph-attention fusion; class-weighted by default).")] = None,
    gat_window: Annotated[int | None, typer.Option(help="gat: graph neighbours within +-N frames "
                                                   "(default: every frame).")] = None,
    test_split: Annotated[str | None, typer.Option(help="Split(s) the best checkpoint is scored on, comma-"
                                                   "separated (default: the corpus's: test1,test2 for "
                                                   "MSP-Podcast, test for RAVDESS and manifests).")] = None,
    device: Device = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for PyTorch (smoke: 1).")] = None,
    skip_bad_audio: SkipBad = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last epoch, "
                                         "with its saved configuration.")] = False,
    results: Results = RESULTS,
) -> None:
    """Train the SER model with one mixer (or each of several, on each of several speech encoders);
    evaluate the best checkpoint on the test split(s). Rerunning a grid continues it: finished runs are skipped.

    Example: bench train --corpus data/synth --mixer sa --preset smoke --out runs/sa-smoke

    Example: bench train --corpus msp-podcast:MSP --mixer sa,kda --speech-encoder hf:A,hf:B --test-split test1,test2
    --out runs/table1
    """
    from model.grid import Cell, plan, run_cell, run_grid, split_list
    from model.train_config import TrainConfig

    overrides = dict(epochs=epochs, crop_seconds=crop_seconds, batch_size=batch_size, lr=lr, patience=patience,
                     class_weighted=class_weighted, seed=seed, width=width, heads=heads, dropout=dropout,
                     budget=budget, depth=depth, ffn=ffn, text_encoder=text_encoder, eval_batch_size=eval_batch_size,
                     threads=threads, speech_layer=layer, features=features, fusion=fusion, gat_window=gat_window)
    try:
        mixer_list, encoders, tests = split_list(mixer), split_list(speech_encoder) or [None], split_list(test_split)
        overrides["test_split"] = tests[0] if tests else None
        if resume:
            if len(mixer_list) * len(encoders) > 1:
                _fail("--resume continues one run folder; rerun a grid's command and it continues by itself")
            overrides["speech_encoder"] = speech_encoder
            given = [k for k, v in {**overrides, "corpus": corpus, "device": device}.items() if v is not None]
            if given:
                _fail(f"--resume continues with {out}/config.json; drop "
                      + ", ".join("--" + k.replace("_", "-") for k in given))
            if not (out / "config.json").is_file():
                _fail(f"nothing to resume: {out} has no config.json")
            config = TrainConfig(**json.loads((out / "config.json").read_text())["train"])
            planned = [(Cell(config.mixer, None, out), config)]
        else:
            if corpus is None and features is None:
                _fail("--corpus is required (msp-podcast:ROOT, ravdess:ROOT, csv:FILE, synthetic:DIR or DIR), "
                      "or --features CACHE")
            if corpus is not None and features is not None:
                _fail("--features CACHE fixes the corpus; drop --corpus")
            overrides.update(device=_device(device), skip_bad_audio=skip_bad_audio)
            planned = plan(corpus, preset, overrides, mixer_list, encoders, out)
        console = Console()
        with _progress(console) as bar:
            def progress(epoch: int, total: int):
                task = bar.add_task(f"epoch {epoch + 1}/{planned[0][1].epochs}", total=total, loss=0.0, acc=0.0)
                return lambda loss, acc: bar.update(task, advance=1, loss=loss, acc=acc)

            if len(planned) == 1:
                finals = {out: run_cell(planned[0][1], out, results, tests[1:], resume, bar.console.print, progress)}
            else:
                finals = run_grid(planned, results, tests[1:], bar.console.print, progress)
    except ValueError as error:
        _fail(str(error))
    for cell, config in planned:
        console.print(_scores_table(finals[cell.out], f"{config.speech_encoder} x {config.mixer}: best checkpoint"))


def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `bench train`.")],
    split: Annotated[str | None, typer.Option(help="Split to score, e.g. test, development (default: the run's "
                                              "first test split: test1 for MSP-Podcast).")] = None,
    corpus: Corpus = None,
    batch_size: Annotated[int | None, typer.Option(help="Evaluation batch; default the run's.")] = None,
    device: Device = None,
    skip_bad_audio: SkipBad = False,
    results: Results = RESULTS,
) -> None:
    """Score a run's best checkpoint on a split: macro-F1, UAR, accuracy, per-class F1, confusion.

    Example: bench evaluate runs/sa-smoke --split test
    """
    from dataclasses import asdict

    from model.evaluate import default_split, evaluate_run

    try:
        split = split or default_split(run_dir)
        result = evaluate_run(run_dir, split, corpus, results, batch_size, skip_bad_audio, _device(device))
    except (ValueError, FileNotFoundError) as error:
        _fail(str(error))
    Console().print(_scores_table({split: asdict(result)}, str(run_dir)))


class Table1Format(StrEnum):
    markdown = "markdown"
    csv = "csv"
    json = "json"


def table1(
    results: Annotated[list[Path], typer.Argument(help="Results files holding accuracy rows (bench train, "
                                                  "bench evaluate).")],
    fmt: Annotated[Table1Format, typer.Option("--format", help="markdown, csv or json.")] = Table1Format.markdown,
    corpus: Annotated[str | None, typer.Option(help="Only rows of this corpus (the name rows record); needed "
                                               "when the files hold several.")] = None,
    reference: Annotated[Path | None, typer.Option(help="The paper's Table 1 CSV (default: "
                                                   "results/reference/paper_table1_macro_f1.csv).")] = None,
) -> None:
    """Our macro-F1 (%) beside the paper's Table 1: Dev (v1), Test1 and Test2 per mechanism x backbone.

    Example: bench table1 results/accuracy.jsonl --format markdown
    """
    from model.table1 import REFERENCE, render
    from model.table1 import table as build_table

    try:
        records = build_table(results, reference or REFERENCE, corpus)
    except ValueError as error:
        _fail(str(error))
    note = ("Dev (v1): the paper's is MSP-Podcast v1.0 Development; ours is the development split of the corpus "
            "read. Ours: mean over runs (± std, n runs). -: not run / not reported.")
    typer.echo(render(records, fmt.value, note), nl=False)


def _progress(console: Console, metrics: bool = True) -> Progress:
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    if metrics:
        columns.append(TextColumn("loss {task.fields[loss]:.4f} acc {task.fields[acc]:.3f}"))
    return Progress(*columns, TimeElapsedColumn(), console=console)


def _scores_table(final: dict[str, dict], title: str) -> Table:
    table = Table(title=title)
    for column in ("split", "n", "macro-F1", "UAR", "accuracy", "per-class F1"):
        table.add_column(column)
    for split, s in final.items():
        per_class = " ".join(f"{name[:3]} {f:.2f}" for name, f in s["per_class_f1"].items())
        table.add_row(split, str(s["n"]), f"{s['macro_f1']:.4f}", f"{s['uar']:.4f}", f"{s['accuracy']:.4f}", per_class)
    return table
