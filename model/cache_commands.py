"""``bench features extract`` and ``bench features verify``: the feature cache's commands (``model.cache``).

``bench/cli.py`` and ``python -m model`` compose them as ``app.add_typer(features_app, name="features")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from model.commands import SkipBad, _device, _fail


def extract(
    corpus: Annotated[str, typer.Option(help="KIND:PATH: msp-podcast:ROOT, ravdess:ROOT, csv:FILE, synthetic:DIR.")],
    out: Annotated[Path, typer.Option(help="Cache folder: index.json and safetensors shards. Rerun to resume.")],
    encoder: Annotated[str, typer.Option(help="Speech encoder: logmel, or hf:NAME_OR_PATH (a Hugging Face hub "
                                         "name or local folder, e.g. hf:microsoft/wavlm-large).")] = "logmel",
    layer: Annotated[str, typer.Option(help="last, all (every hidden state; train on any of them or a learned "
                                       "weighted sum) or a hidden-state index.")] = "last",
    text_encoder: Annotated[str, typer.Option(help="Text encoder on transcripts: none, words or "
                                              "hf:NAME_OR_PATH (e.g. hf:bert-large-uncased).")] = "none",
    n_mels: Annotated[int, typer.Option(help="Mel bands of the logmel encoder.")] = 80,
    text_dim: Annotated[int, typer.Option(help="Width of the words encoder.")] = 64,
    train_split: Annotated[str, typer.Option(help="Split whose waveform mean and deviation normalise every "
                                             "split (the paper's normalisation).")] = "train",
    dtype: Annotated[str, typer.Option(help="Stored dtype: float32, float16 or bfloat16.")] = "float32",
    shard_mb: Annotated[float, typer.Option(help="Close a shard once it holds this many megabytes.")] = 256.0,
    shard_utterances: Annotated[int, typer.Option(help="... or this many utterances (0: no limit).")] = 0,
    device: Annotated[str | None, typer.Option(help="Device the encoders run on; default cuda when "
                                               "present.")] = None,
    skip_bad_audio: SkipBad = False,
) -> None:
    """Encode every utterance of every split once and store it; rerunning the same command resumes.

    Example: bench features extract --corpus synthetic:data/synth --encoder hf:microsoft/wavlm-large --layer all
    --out features/wavlm
    """
    from model.extract import extract as run_extract
    from model.features import speech_encoder
    from model.features import text_encoder as make_text

    console = Console()
    try:
        chosen = _device(device)
        speech = speech_encoder(encoder, n_mels, layer, chosen)
        text = make_text(text_encoder, text_dim, chosen)
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn()]
        with Progress(*columns, console=console) as bar:
            task = bar.add_task(f"encoding with {speech.name}", total=None)
            cache = run_extract(corpus, out, speech, text, train_split, dtype, shard_mb, shard_utterances,
                                skip_bad_audio, on_utterance=lambda done, total: bar.update(task, completed=done,
                                                                                          total=total),
                                report=bar.console.print)
    except (ValueError, OSError) as error:
        _fail(str(error).splitlines()[0] if str(error) else repr(error))
    index = cache.index
    size = sum(s["bytes"] for s in index["shards"]) / 2**20
    console.print(f"{len(index['utterances'])} utterances, {len(index['shards'])} shards, {size:.1f} MiB -> {out}")


def verify(
    cache: Annotated[Path, typer.Argument(help="A cache folder written by bench features extract.")],
) -> None:
    """Re-hash every shard and check every stored tensor against the index; exit 1 on any problem.

    Example: bench features verify features/wavlm
    """
    from model.cache import read_index
    from model.cache import verify as check

    try:
        index = read_index(cache)
        problems = check(cache)
    except ValueError as error:
        _fail(str(error))
    if problems:
        for problem in problems:
            Console(stderr=True).print(f"[red]bad:[/red] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    Console().print(f"{cache}: {len(index['shards'])} shards and {len(index['utterances'])} utterances verified")


features_app = typer.Typer(help="Feature caches: encode a corpus once, train many models on it.", no_args_is_help=True)
features_app.command("extract")(extract)
features_app.command("verify")(verify)
