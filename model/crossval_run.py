"""A resumable ResLSTM-SA cross-validation run (``bench reslstm-sa``): run folder, cache, rows.

Run folder ``OUT``:
- ``config.json``: the settings (``model.crossval.CVConfig``); a rerun with other settings is refused.
- ``features.safetensors``: every utterance's frames, extracted once (all splits of the corpus) and
  reused by every seed and fold; re-extracted whole if the feature settings or the files change.
- ``seed{S}/fold{K}.json``: a finished (seed, fold): test predictions, best epoch, history;
  written atomically, and loaded instead of training again when the run is repeated.

Accuracy rows (``"kind": "accuracy"``, ``"system": "reslstm-sa"``, mixer ``reslstm``) go to the
results file: one per finished fold (split ``fold-test``, with ``fold``) and one per seed whose
folds are all done (split ``test``: the UAR pooled over the out-of-fold predictions, with the
per-fold UARs). A row already in the file (same system, run folder, seed, split and fold) is not
written again, so rerunning after a crash neither loses nor duplicates rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import soundfile
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from model.acoustic import Acoustic, AcousticConfig
from model.crossval import CVConfig, FoldResult, fold_corpora, normalization, pooled, seed_summary, train_fold
from model.data import Corpus, load_audio
from model.metrics import AccuracyRow, Scores, append_row, read_rows
from model.systems.reslstm_sa import reslstm_sa

SYSTEM = "reslstm-sa"
Progress = Callable[[str, int], Callable[..., None]]  # (description, total) -> tick(**fields)


@dataclass
class CVSummary:
    folds: dict[int, dict[int, FoldResult]]  # seed -> fold -> result
    pooled_uar: dict[int, float]  # seed -> pooled UAR over its folds
    mean: float
    std: float
    best: float
    trained: int  # (seed, fold) pairs trained in this call; the rest were loaded


def extract(corpus: Corpus, acoustic: Acoustic, cache: Path, progress: Progress | None = None
            ) -> dict[str, torch.Tensor]:
    """Every utterance's frames [T, 46], from ``cache`` when it holds exactly these files and settings."""
    utterances = [u for split in corpus.splits() for u in corpus.utterances(split)]
    settings = json.dumps({"acoustic": acoustic.config.to_dict(),
                           "files": sorted(f"{u.id}:{u.path.stat().st_size}" for u in utterances)}, sort_keys=True)
    if cache.is_file():
        with safe_open(cache, framework="pt") as stored:
            same = (stored.metadata() or {}).get("settings") == settings
        if same:
            return load_file(cache)
    features = {}
    tick = progress("features", len(utterances)) if progress else None
    for utterance in utterances:
        rate = acoustic.config.sample_rate or soundfile.info(str(utterance.path)).samplerate
        features[utterance.id] = acoustic.features(load_audio(utterance, rate), rate)
        if tick:
            tick()
    temporary = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    save_file(features, temporary, metadata={"settings": settings})
    os.replace(temporary, cache)
    return features


def _check_config(config: CVConfig, out: Path) -> None:
    path = out / "config.json"
    wanted = asdict(config)
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored != wanted:
            differ = sorted(k for k in wanted if stored.get(k) != wanted[k])
            raise ValueError(f"{out} holds a run with other settings ({', '.join(differ)}); "
                             f"use another --out or the same settings")
    else:
        path.write_text(json.dumps(wanted, indent=2) + "\n")


def _save_fold(path: Path, result: FoldResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(asdict(result)) + "\n")
    os.replace(temporary, path)


def run(config: CVConfig, out: Path, seeds: list[int], folds: list[int], results: Path | None = None,
        report: Callable[[str], None] = print, progress: Progress | None = None, device: str = "cpu") -> CVSummary:
    """Cross-validate every seed over ``folds``, resuming finished (seed, fold) pairs from ``out``."""
    config.check()
    if not seeds or not folds or len(set(folds)) != len(folds) or not set(folds) <= set(range(1, 6)):
        raise ValueError(f"expected at least one seed and distinct folds in 1..5; got seeds {seeds}, folds {folds}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_config(config, out)
    corpora = fold_corpora(config.corpus)
    first = corpora[folds[0]]
    features = extract(first, Acoustic(AcousticConfig(**config.acoustic)), out / "features.safetensors", progress)
    report(f"{len(features)} utterances, {len(first.classes)} classes, "
           f"features {next(iter(features.values())).shape[1]}-dim")
    done: dict[int, dict[int, FoldResult]] = {}
    trained = 0
    for seed in seeds:
        done[seed] = {}
        for fold in folds:
            path = out / f"seed{seed}" / f"fold{fold}.json"
            if path.is_file():
                done[seed][fold] = FoldResult(**json.loads(path.read_text()))
            else:
                corpus = corpora[fold]
                bar = progress(f"seed {seed} fold {fold}", config.epochs) if progress else None
                on_epoch = (lambda epoch, loss, uar, bar=bar: bar(loss=loss, uar=uar)) if bar else None
                result = train_fold(config, seed, fold, corpus, features, normalization(config, corpus, features),
                                    on_epoch, device)
                _save_fold(path, result)
                done[seed][fold], trained = result, trained + 1
            result = done[seed][fold]
            report(f"seed {seed} fold {fold}: test UAR {result.uar:.4f} (best epoch {result.best_epoch}, "
                   f"validation UAR {result.validation_uar:.4f}, n={len(result.ids)})")
            if results is not None:
                _append_once(results, _fold_row(config, out, result, first.classes, device))
    pooled_uar = {seed: pooled(list(done[seed].values()), first.classes).uar for seed in seeds}
    if results is not None:
        for seed in seeds:
            _append_once(results, _pooled_row(config, out, seed, list(done[seed].values()), first.classes, device))
    mean, std, best = seed_summary(list(pooled_uar.values()))
    return CVSummary(done, pooled_uar, mean, std, best, trained)


def _row(config: CVConfig, out: Path, split: str, result: Scores, seed: int, best_epoch: int, device: str,
         **extra) -> dict:
    model = reslstm_sa(config.hidden)
    acoustic = AcousticConfig(**config.acoustic)
    row = AccuracyRow(
        mixer="reslstm", kernel="torch", speech_encoder=acoustic.name, text_encoder="none", corpus="ravdess",
        split=split, macro_f1=result.macro_f1, uar=result.uar, accuracy=result.accuracy,
        per_class_f1=result.per_class_f1, confusion=result.confusion, n=result.n,
        params=sum(p.numel() for p in model.parameters() if p.requires_grad), depth=2, width=config.hidden,
        seed=seed, epochs=config.epochs, best_epoch=best_epoch, run_dir=str(out), device=device)
    return {**asdict(row), "system": SYSTEM, "config": asdict(config), **extra}


def _fold_row(config: CVConfig, out: Path, result: FoldResult, classes: tuple[str, ...], device: str) -> dict:
    return _row(config, out, "fold-test", pooled([result], classes), result.seed, result.best_epoch, device,
                fold=result.fold, validation_uar=result.validation_uar)


def _pooled_row(config: CVConfig, out: Path, seed: int, results: list[FoldResult],
                classes: tuple[str, ...], device: str) -> dict:
    ordered = sorted(results, key=lambda r: r.fold)
    return _row(config, out, "test", pooled(ordered, classes), seed, 0, device, fold=None,
                folds=[r.fold for r in ordered], fold_uar={str(r.fold): r.uar for r in ordered},
                best_epochs={str(r.fold): r.best_epoch for r in ordered},
                protocol="speaker-independent CV (ResLSTM-SA folds), out-of-fold predictions pooled")


def _append_once(path: Path, row: dict) -> None:
    key = ("system", "run_dir", "seed", "split", "fold", "folds")
    if Path(path).is_file():
        for old in read_rows(path, "accuracy"):
            if all(old.get(k) == row.get(k) for k in key):
                return
    append_row(path, row)
