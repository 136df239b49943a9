"""Evaluation: whole utterances (batch 1 by default, as the paper), metrics, accuracy rows.

Because the model mixes each length group unpadded (``model.ser``), a larger evaluation batch gives
the same predictions as batch 1, only faster; the batch size is a speed knob, not a protocol change.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from model import checkpoint, distributed
from model.build import ser_model
from model.data import open_corpus
from model.dataset import Encoded, collate
from model.inputs import evaluation_split
from model.metrics import AccuracyRow, Scores, append_row, scores
from model.ser import SERConfig, SERModel, trainable


@torch.no_grad()
def predict(model: SERModel, data: Encoded, batch_size: int = 1,
            context: distributed.Context | None = None) -> list[int]:
    """Predicted class per utterance of ``data``, in order; sharded over ranks when distributed."""
    context = context or distributed.Context()
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    mine = list(range(context.rank, len(data), context.world))
    predictions = {}
    for k in range(0, len(mine), batch_size):
        picks = [(i, 0) for i in mine[k: k + batch_size]]
        batch = {key: value.to(device) for key, value in collate(data, picks, None).items()}
        batch.pop("labels")
        logits = model(**batch)
        predictions.update(zip((i for i, _ in picks), logits.argmax(-1).tolist(), strict=True))
    model.train(was_training)
    merged = {}
    for part in distributed.gather(context, predictions):
        merged.update(part)
    return [merged[i] for i in range(len(data))]


def score(model: SERModel, data: Encoded, classes: tuple[str, ...], batch_size: int = 1,
          context: distributed.Context | None = None) -> Scores:
    return scores(data.labels.tolist(), predict(model, data, batch_size, context), classes)


def accuracy_row(resolved: dict, split: str, result: Scores, epochs: int, best_epoch: int,
                 run_dir: Path) -> AccuracyRow:
    train, built = resolved["train"], resolved["model"]
    return AccuracyRow(
        mixer=built["mixer"], kernel=resolved["kernel"], speech_encoder=resolved["speech_encoder"],
        text_encoder=resolved["text_encoder"], corpus=resolved["corpus_name"], split=split,
        macro_f1=result.macro_f1, uar=result.uar, accuracy=result.accuracy, per_class_f1=result.per_class_f1,
        confusion=result.confusion, n=result.n, params=resolved["params"], depth=resolved["depth"],
        width=built["width"], seed=train["seed"], epochs=epochs, best_epoch=best_epoch,
        run_dir=str(run_dir), device=resolved["device"], fusion=built.get("fusion", "concat"),
    )


def load_trained(run_dir: Path, device: str = "cpu") -> tuple[SERModel, dict, dict]:
    """The best checkpoint of a run, its resolved configuration and the checkpoint itself."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{run_dir} is not a training run: no config.json in it")
    resolved = json.loads(config_path.read_text())
    state = checkpoint.load(run_dir / "best.pt")
    model = ser_model(SERConfig(**resolved["model"]), resolved["depth"], device=device)
    model.load_state_dict(state["model"])
    if trainable(model) != resolved["params"]:
        raise ValueError(f"{run_dir}: model rebuilt with {trainable(model)} parameters, run had "
                         f"{resolved['params']}")
    return model.to(device), resolved, state


def default_split(run_dir: Path) -> str:
    """The first split a run was tested on (its config.json; runs from before it recorded them: test)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ValueError(f"{run_dir} is not a training run: no config.json in it")
    resolved = json.loads(path.read_text())
    return (resolved.get("splits", {}).get("tests") or [resolved["train"].get("test_split") or "test"])[0]


def evaluate_run(run_dir: Path, split: str, corpus: str | None = None, results: Path | None = None,
                 batch_size: int | None = None, skip_bad_audio: bool = False,
                 device: str = "cpu") -> Scores:
    """Score a run's best checkpoint on ``split`` of its corpus (or another), appending an accuracy row.

    A run trained from a feature cache is scored from the cache alone (classes and corpus name from its
    index), so the audio need not be present; ``corpus`` given instead encodes that corpus's audio."""
    model, resolved, state = load_trained(run_dir, device)
    train = resolved["train"]
    cached = bool(train.get("features")) and corpus is None
    source = _cache_source(train["features"]) if cached else open_corpus(corpus or train["corpus"])
    if tuple(source.classes) != tuple(resolved["classes"]):
        raise ValueError(f"corpus classes {list(source.classes)} differ from the run's {resolved['classes']}")
    # The run's feature cache when it trained from one (unless another corpus is asked for), else its encoders.
    data = evaluation_split(resolved, source, split, skip_bad_audio, device, cached=cached)
    result = score(model, data, source.classes, batch_size or train["eval_batch_size"])
    if results is not None:
        resolved = {**resolved, "corpus_name": source.name}
        append_row(results, accuracy_row(resolved, split, result, state["epochs_trained"], state["epoch"],
                                         run_dir))
    return result


def _cache_source(root: str):
    """A feature cache's corpus name and classes, as ``evaluate_run`` reads them from a corpus."""
    from types import SimpleNamespace

    from model.cache import FeatureCache

    cache = FeatureCache(root)
    return SimpleNamespace(name=cache.corpus_name, classes=cache.classes)
