"""The training recipe of section 4.3 of "How Attention Shapes Emotion", every part overridable.

Paper defaults (preset ``paper``): waveforms normalised with the training set's mean and deviation,
5.5 s random crops, batch 32, AdamW at 1e-4 halved after 5 epochs without a better validation
macro-F1 (``ReduceLROnPlateau(mode="max", factor=0.5, patience=5)``), 20 epochs, dropout 0.4,
4 heads, ~20M trainable parameters, the best checkpoint by validation macro-F1 kept and evaluated on
whole utterances at batch 1. Preset ``smoke`` sizes model and crops for a 2-core CPU.

Inputs (``model.inputs``): utterances encoded on the fly by frozen encoders (``speech_encoder``
``logmel`` or ``hf:NAME_OR_PATH`` with ``speech_layer`` last / all / an index; ``text_encoder``), or
read from a feature cache (``features=DIR``, made by ``bench features extract``), whose corpus and
encoders then fix those options. Crops of ``crop_seconds`` become crops of the stored frames.

Fusion (``fusion``): ``concat``, the paper's U = [S; E] + mixer stack, or ``gat``, the graph-attention
fusion system (``model.systems.gat_fusion``; class-weighted cross-entropy by default). A speech
encoder named ``NAME+f0`` adds the quantised F0 column that either fusion embeds.

Reproducibility: weights are initialised from ``seed``; each epoch reseeds its data order, crops and
dropout from (seed, epoch), and a checkpoint with model, optimiser and scheduler state is written
atomically after every epoch, so ``resume`` after a crash finishes with exactly the weights and
metrics of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

import mixers
from bench.identity import carried
from model import checkpoint, distributed
from model.build import build_model
from model.dataset import Encoded, collate, epoch_order
from model.evaluate import accuracy_row, score
from model.frontend import SAMPLE_RATE
from model.inputs import apply_normalization, prepare
from model.metrics import append_row
from model.ser import SERConfig, trainable
from model.train_config import TrainConfig


def run(config: TrainConfig, out: Path, resume: bool = False, results: Path | None = None,
        report: Callable[[str], None] = print, progress: Callable | None = None) -> dict:
    """Train (or resume) into ``out``; returns the final test and development scores."""
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    context = distributed.setup(config.device)
    out = Path(out)
    if context.main:
        out.mkdir(parents=True, exist_ok=True)

    def log(line: str) -> None:
        if context.main:
            report(line)
            with open(out / "train.log", "a", encoding="utf-8") as f:
                f.write(line + "\n")

    try:
        return _run(config, out, resume, results, log, progress if context.main else None, context)
    finally:
        distributed.teardown(context)


def _run(config: TrainConfig, out: Path, resume: bool, results: Path | None, report: Callable[[str], None],
         progress: Callable | None, context: distributed.Context) -> dict:
    state = checkpoint.load(out / "last.pt") if resume and (out / "last.pt").exists() else None
    if not resume and (out / "last.pt").exists():
        raise ValueError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")
    if state is not None and state.get("finished"):
        report(f"{out}: run already finished")
        return state["final"]
    inputs = prepare(config, context.device)
    splits, classes = inputs.splits, inputs.classes
    names = inputs.names
    train, dev = splits[names.train], splits[names.dev]
    for split, data in splits.items():
        report(f"{split}: {len(data)} utterances" + (f" ({data.skipped} unreadable skipped)" if data.skipped else ""))

    name, kernel = mixers.parse_spec(config.mixer)
    model_config = SERConfig(mixer=name, kernel=kernel, speech_dim=inputs.speech_dim, text_dim=inputs.text_dim,
                             speech_layers=inputs.speech_layers, classes=len(classes), width=config.width,
                             heads=config.heads, dropout=config.dropout, ffn=config.ffn, depth=config.depth,
                             budget=config.budget, fusion=config.fusion, gat_window=config.gat_window,
                             f0=inputs.speech_name.endswith("+f0"))
    torch.manual_seed(config.seed)
    model = build_model(model_config, context.device)
    apply_normalization(model, inputs)
    resolved = {"train": asdict(config), "model": model_config.to_dict(), "depth": model.depth,
                "params": trainable(model), "kernel": model.kernel, "speech_encoder": inputs.speech_name,
                "speech_layer": inputs.speech_layer,
                "text_encoder": inputs.text_name, "corpus_name": inputs.corpus_name,
                "classes": list(classes), "wave_mean": inputs.wave_mean, "wave_std": inputs.wave_std,
                "world": context.world, "device": context.device, "sample_rate": SAMPLE_RATE,
                "splits": {"train": names.train, "dev": names.dev, "tests": list(names.tests)},
                **carried(json.loads((out / "config.json").read_text()) if state is not None else None)}
    report(f"model: {name}:{model.kernel}, depth {model.depth}, {resolved['params']:,} trainable parameters "
           f"(budget {config.budget:,}), width {config.width}, {config.heads} heads")
    if context.main:  # atomic: the other ranks of a resumed torchrun job read the old one above
        checkpoint.write_atomic(out / "config.json", (json.dumps(resolved, indent=2) + "\n").encode())

    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=config.factor,
                                                           patience=config.patience)
    start, best_f1, best_epoch, history = 0, float("-inf"), 0, []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, best_f1, best_epoch, history = state["epoch"], state["best_f1"], state["best_epoch"], state["history"]
        report(f"resuming after epoch {start} (best development macro-F1 {best_f1:.4f} at epoch {best_epoch})")
    net = DistributedDataParallel(model) if context.active else model
    crop = inputs.crop_frames
    weights = _class_weights(train, len(classes)) if config.class_weighted else None

    for epoch in range(start, config.epochs):
        loss, accuracy = _train_epoch(net, train, optimizer, config, context, epoch, crop, weights, progress)
        val = score(model, dev, classes, config.eval_batch_size, context)
        scheduler.step(val.macro_f1)
        improved = val.macro_f1 > best_f1
        if improved:
            best_f1, best_epoch = val.macro_f1, epoch + 1
            if context.main:
                checkpoint.save({"model": model.state_dict(), "epoch": best_epoch, "epochs_trained": config.epochs,
                                 "macro_f1": best_f1}, out / "best.pt")
        lr = optimizer.param_groups[0]["lr"]
        history += [{"kind": "epoch", "epoch": epoch + 1, "split": names.train, "loss": loss,
                     "accuracy": accuracy, "lr": lr},
                    {"kind": "epoch", "epoch": epoch + 1, "split": names.dev, **asdict(val), "best": improved}]
        report(f"epoch {epoch + 1}/{config.epochs}: train loss {loss:.4f} acc {accuracy:.3f} | {names.dev} "
               f"macro-F1 {val.macro_f1:.4f} UAR {val.uar:.4f} acc {val.accuracy:.3f} | lr {lr:.2e}"
               + (" | best" if improved else ""))
        if context.main:
            _write_history(out, history)
            checkpoint.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "best_f1": best_f1,
                             "best_epoch": best_epoch, "history": history}, out / "last.pt")
        distributed.barrier(context)

    model.load_state_dict(checkpoint.load(out / "best.pt")["model"])
    final = {}
    for split in (names.dev, *names.tests):
        result = score(model, splits[split], classes, config.eval_batch_size, context)
        final[split] = asdict(result)
        history.append({"kind": "final", "epoch": best_epoch, "split": split, **asdict(result)})
        report(f"best epoch {best_epoch}, {split}: macro-F1 {result.macro_f1:.4f} UAR {result.uar:.4f} "
               f"accuracy {result.accuracy:.4f} (n={result.n})")
        if context.main and results is not None:
            append_row(results, accuracy_row(resolved, split, result, config.epochs, best_epoch, out))
    if context.main:
        _write_history(out, history)
        last = checkpoint.load(out / "last.pt")
        checkpoint.save({**last, "history": history, "finished": True, "final": final}, out / "last.pt")
    distributed.barrier(context)
    return final


def _train_epoch(net: torch.nn.Module, data: Encoded, optimizer: torch.optim.Optimizer, config: TrainConfig,
                 context: distributed.Context, epoch: int, crop: int | None, weights: torch.Tensor | None,
                 progress: Callable | None) -> tuple[float, float]:
    """One pass over the training split; returns its mean cross-entropy and accuracy (on the crops)."""
    net.train()
    # Dropout draws: one stream per (seed, epoch, rank), independent of everything before the epoch.
    torch.manual_seed((config.seed * 1_000_003 + epoch) * 1_009 + context.rank)
    batches = epoch_order(len(data), config.seed, epoch, config.batch_size, crop, data.frame_counts())
    totals = [0.0, 0.0, 0.0]  # summed loss, correct, count (this rank's examples)
    tick = progress(epoch, len(batches)) if progress else None
    for picks in batches:
        local, share = picks[context.rank:: context.world], float(context.world)
        if not local:  # fewer examples than ranks: run one at zero weight so gradients still sync
            local, share = picks[:1], 0.0
        batch = {key: value.to(context.device) for key, value in collate(data, local, crop).items()}
        labels = batch.pop("labels")
        logits = net(**batch)
        losses = F.cross_entropy(logits, labels, weight=None if weights is None else weights.to(logits.device),
                                 reduction="none")
        everyone = data.labels[[i for i, _ in picks]]
        normaliser = float(weights[everyone].sum()) if weights is not None else float(len(picks))
        optimizer.zero_grad(set_to_none=True)
        (losses.sum() * share / normaliser).backward()
        optimizer.step()
        plain = F.cross_entropy(logits.detach(), labels, reduction="sum").item()
        hits = (logits.argmax(-1) == labels).sum().item()
        if share:
            totals = [totals[0] + plain, totals[1] + hits, totals[2] + len(local)]
        if tick:
            tick(totals[0] / max(totals[2], 1), totals[1] / max(totals[2], 1))
    loss, correct, count = distributed.all_sum(context, totals)
    return loss / count, correct / count


def _class_weights(data: Encoded, classes: int) -> torch.Tensor:
    """Balanced weights n / (C * n_c), as scikit-learn's ``class_weight="balanced"``; absent classes get 0."""
    counts = torch.bincount(data.labels, minlength=classes).double()
    weights = torch.where(counts > 0, len(data) / (classes * counts.clamp(min=1)), 0.0)
    return weights.float()


def _write_history(out: Path, history: list[dict]) -> None:
    """Rewrite ``metrics.jsonl`` whole and atomically, so it always matches the checkpoint it came with."""
    temporary = out / f".metrics.jsonl.{os.getpid()}.tmp"
    temporary.write_text("".join(json.dumps(row) + "\n" for row in history))
    os.replace(temporary, out / "metrics.jsonl")
