"""ResLSTM-SA's protocol: speaker-independent 5-fold cross-validation on RAVDESS, UAR pooled out of fold.

Per the paper and its authors' code, for each fold k (``model.data.RAVDESS_FOLDS``: test actors,
validation actors, training on the rest): a fresh ``reslstm_sa`` model, Adam, cosine annealing with
warm restarts stepped once per epoch (``CosineAnnealingWarmRestarts(T_0=t0, T_mult=1,
eta_min=lr * eta_min_factor)``), cross-entropy, the epoch with the best validation UAR kept, then
that model predicts fold k's test actors. The 5 test sets partition the 24 actors, so every
utterance gets exactly one out-of-fold prediction; the reported UAR (macro recall, scikit-learn)
is computed over all of them pooled. Seeds repeat the whole CV; the paper reports mean and
standard deviation (numpy's, ddof 0, as the authors' code) over 10 seeds: 0.6232 +- 0.0119, best
0.6517.

Hyperparameters: the authors tuned them with Optuna and did not publish the chosen values; our
defaults (lr 1e-4, weight decay 1e-3, dropout 0.3, T_0 = 10, batch 16, 100 epochs) lie inside
their published search space and are ours. Features are standardised per dimension over all
frames of the corpus, as the authors did (``norm="corpus"``), or over each fold's training
frames (``norm="train"``).

The run folder, feature cache and resumption are ``model.crossval_run``'s.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from model.acoustic import AcousticConfig, standardize_stats
from model.data import RAVDESS_FOLDS, Corpus, open_corpus
from model.metrics import Scores, scores
from model.systems.reslstm_sa import ResLSTMSA, reslstm_sa

PAPER_UAR = (0.6232, 0.0119, 0.6517)  # mean, std over 10 seeds, best (ResLSTM-SA-h64)
FOLDS = tuple(range(1, len(RAVDESS_FOLDS) + 1))


@dataclass
class CVConfig:
    corpus: str  # ravdess:ROOT[?song=true]; the fold option is set per fold
    hidden: int = 64
    epochs: int = 100
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 1e-3
    dropout: float = 0.3
    t0: int = 10
    eta_min_factor: float = 0.01
    norm: str = "corpus"  # corpus (the authors') | train
    eval_batch_size: int = 64
    acoustic: dict = field(default_factory=lambda: AcousticConfig().to_dict())

    def check(self) -> None:
        checks = [(self.hidden >= 1, "hidden >= 1"), (self.epochs >= 1, "epochs >= 1"),
                  (self.batch_size >= 2, "batch_size >= 2 (batch norm needs two examples)"),
                  (self.lr > 0, "lr > 0"), (self.weight_decay >= 0, "weight_decay >= 0"),
                  (0 <= self.dropout < 1, "0 <= dropout < 1"), (self.t0 >= 1, "t0 >= 1"),
                  (0 <= self.eta_min_factor <= 1, "0 <= eta_min_factor <= 1"),
                  (self.norm in ("corpus", "train"), "norm corpus or train"), (self.eval_batch_size >= 1,
                                                                             "eval_batch_size >= 1")]
        for ok, expected in checks:
            if not ok:
                raise ValueError(f"expected {expected}; got {asdict(self)}")


@dataclass
class FoldResult:
    seed: int
    fold: int
    ids: list[str]  # the fold's test utterances
    targets: list[int]
    predictions: list[int]
    best_epoch: int
    validation_uar: float  # at the best epoch
    uar: float  # on the fold's test actors
    history: list[dict]


def fold_corpora(spec: str) -> dict[int, Corpus]:
    """Fold k -> the RAVDESS corpus in fold k's splits; anything but ``ravdess:`` is refused."""
    if not spec.startswith("ravdess:"):
        raise ValueError(f"ResLSTM-SA's protocol runs on RAVDESS's speaker folds: give ravdess:ROOT, not {spec!r}")
    return {k: open_corpus(spec, fold=k) for k in FOLDS}


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch; a last batch of one joins the one before (batch norm needs two examples)."""
    order = torch.randperm(n, generator=generator)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def _pad(frames: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(f) for f in frames])
    return torch.nn.utils.rnn.pad_sequence(frames, batch_first=True), lengths  # [B, T, F], [B]


@torch.no_grad()
def predict(model: ResLSTMSA, frames: list[torch.Tensor], batch_size: int) -> list[int]:
    """Class per utterance; batching does not change predictions (the model masks padding)."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(frames), batch_size):
        x, lengths = _pad(frames[start: start + batch_size])
        out += model(x.to(device), lengths.to(device)).argmax(-1).tolist()
    return out


def train_fold(config: CVConfig, seed: int, fold: int, corpus: Corpus, features: dict[str, torch.Tensor],
               stats: tuple[torch.Tensor, torch.Tensor],
               on_epoch: Callable[[int, float, float], None] | None = None, device: str = "cpu") -> FoldResult:
    """Train on fold ``fold``'s training actors, keep the best validation-UAR epoch, predict its test actors."""
    classes = corpus.classes
    mean, std = stats

    def split(name: str) -> tuple[list[str], list[torch.Tensor], list[int]]:
        chosen = corpus.utterances(name)
        return ([u.id for u in chosen], [(features[u.id] - mean) / std for u in chosen],
                [classes.index(u.label) for u in chosen])

    (_, train_x, train_y), (_, val_x, val_y), (test_ids, test_x, test_y) = map(split, ("train", "validation", "test"))
    torch.manual_seed(seed * 1_000 + fold)  # weights and dropout: one stream per (seed, fold)
    model = reslstm_sa(config.hidden, len(classes), config.dropout).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=config.t0, T_mult=1, eta_min=config.lr * config.eta_min_factor)
    order = torch.Generator().manual_seed(seed * 1_000 + fold)
    labels = torch.tensor(train_y, device=device)
    best_uar, best_epoch, best_state, history = -1.0, 0, None, []
    for epoch in range(1, config.epochs + 1):
        model.train()
        total, count = 0.0, 0
        for picks in _batches(len(train_x), config.batch_size, order):
            x, lengths = _pad([train_x[i] for i in picks.tolist()])
            loss = F.cross_entropy(model(x.to(device), lengths.to(device)), labels[picks.to(device)])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(picks), count + len(picks)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        val_uar = scores(val_y, predict(model, val_x, config.eval_batch_size), classes).uar
        if val_uar > best_uar:
            best_uar, best_epoch, best_state = val_uar, epoch, copy.deepcopy(model.state_dict())
        history.append({"epoch": epoch, "loss": total / count, "lr": lr, "validation_uar": val_uar})
        if on_epoch:
            on_epoch(epoch, total / count, val_uar)
    model.load_state_dict(best_state)
    predictions = predict(model, test_x, config.eval_batch_size)
    return FoldResult(seed, fold, test_ids, test_y, predictions, best_epoch, best_uar,
                      scores(test_y, predictions, classes).uar, history)


def normalization(config: CVConfig, corpus: Corpus, features: dict[str, torch.Tensor]
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and deviation: over the whole corpus (the authors') or this fold's training split."""
    splits = corpus.splits() if config.norm == "corpus" else ("train",)
    return standardize_stats([features[u.id] for s in splits for u in corpus.utterances(s)])


def pooled(results: list[FoldResult], classes: tuple[str, ...]) -> Scores:
    """Scores over the out-of-fold predictions of ``results`` pooled."""
    targets = [t for r in results for t in r.targets]
    return scores(targets, [p for r in results for p in r.predictions], classes)


def seed_summary(uars: list[float]) -> tuple[float, float, float]:
    """Mean, standard deviation (ddof 0, as the authors' ``np.std``) and best pooled UAR over seeds."""
    values = np.asarray(uars, dtype=np.float64)
    return float(values.mean()), float(values.std()), float(values.max())
