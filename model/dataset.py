"""A split's features in memory, random crops and padded batches.

The paper normalises waveforms with the training set's mean and standard deviation, crops them to
5.5 s for training and evaluates whole utterances. Here each utterance is encoded once, whole, and
a crop of ``crop_seconds`` becomes a crop of its frame sequence starting on a frame boundary; for
the log-mel front end (frames not centred) that is exactly the encoding of the cropped waveform.
Crop offsets come from a generator seeded per epoch, drawn for the whole global batch in order, so
every rank of a data-parallel run and a single process draw the same crops. For a pretrained
transformer encoder a crop of the stored sequence is not the encoding of a cropped waveform: its
frames saw the whole utterance as context (the price of encoding each utterance once).

The normalisation statistics are the training split's, applied to every split: the caller computes
``waveform_stats`` on the training split only and passes them to ``encode`` for each split (and
``model.train`` / ``model.cache`` store them with the run and the cache). Speech features may live
in memory (lists of tensors) or in a feature cache (``model.cache``: sequences that read a stored
shard on access); ``Encoded.frame_counts`` and ``collate`` work on both without loading everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from model.data import Utterance
from model.frontend import SpeechEncoder, TextEncoder


@dataclass
class Encoded:
    ids: list[str]
    labels: torch.Tensor  # [n] class indices
    speech: Sequence[torch.Tensor]  # [M_i, D_s] (or [M_i, L, D_s] with every layer) each
    text: Sequence[torch.Tensor] | None  # [N_i, D_t] each
    skipped: int  # unreadable files skipped (only with skip_bad_audio)

    def __len__(self) -> int:
        return len(self.ids)

    def frame_counts(self) -> list[int]:
        """Speech frames per utterance; a stored sequence knows them without reading its features."""
        known = getattr(self.speech, "frames", None)
        return list(known) if known is not None else [len(s) for s in self.speech]


Loaded = list[tuple[Utterance, np.ndarray]]


def waveform_stats(loaded: Iterable[tuple[Utterance, np.ndarray]]) -> tuple[float, float]:
    """Mean and standard deviation over every sample of the training split (the paper's normalisation).

    ``loaded`` is iterated once, so a generator that reads one file at a time keeps memory flat.
    """
    total, squares, count = 0.0, 0.0, 0
    for _, samples in loaded:
        wave = samples.astype(np.float64)
        total, squares, count = total + wave.sum(), squares + (wave**2).sum(), count + wave.size
    mean = float(total / count)  # Python floats: they round-trip through JSON (runs, caches) exactly
    return mean, max(float(np.sqrt(max(squares / count - mean**2, 0.0))), 1e-8)


def encode(loaded: Loaded, classes: tuple[str, ...], speech: SpeechEncoder, text: TextEncoder | None,
           wave_mean: float, wave_std: float, skipped: int = 0) -> Encoded:
    """Each utterance normalised, encoded whole, kept as features only."""
    ids, labels, feats, tokens = [], [], [], []
    for utterance, samples in loaded:
        features, embedded = encode_utterance(samples, utterance.transcript, speech, text, wave_mean, wave_std)
        feats.append(features)
        ids.append(utterance.id)
        labels.append(classes.index(utterance.label))
        if embedded is not None:
            tokens.append(embedded)
    return Encoded(ids, torch.tensor(labels, dtype=torch.long), feats, tokens if text is not None else None,
                   skipped)


def encode_utterance(samples: np.ndarray, transcript: str | None, speech: SpeechEncoder, text: TextEncoder | None,
                     wave_mean: float, wave_std: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One utterance, normalised with the training split's stats, encoded whole at batch 1.

    Returns speech [M, D_s] (or [M, L, D_s]) and text [N, D_t] (or None). Training on the fly and
    the feature cache both call this, so cached features are the on-the-fly ones bit for bit.
    """
    # In float64 whatever the types of the statistics (NumPy 2 keeps float32 - Python float in float32).
    wave = torch.from_numpy((samples.astype(np.float64) - float(wave_mean)) / float(wave_std)).float()[None]
    features, frames = speech.encode(wave, torch.tensor([wave.shape[1]]))
    embedded = None
    if text is not None:
        tokens, count = text.encode([transcript or ""])
        embedded = tokens[0, : int(count[0])]
    return features[0, : int(frames[0])], embedded


def feature_stats(items: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation per feature over every frame of every item ([M_i, *F] -> [*F] each).

    Streams: float64 running sums per item, so a stored training split is read once and never
    concatenated (F is [D] or [L, D]).
    """
    total = squares = None
    count = 0
    for item in items:
        x = item.double()
        total = x.sum(0) if total is None else total + x.sum(0)
        squares = (x * x).sum(0) if squares is None else squares + (x * x).sum(0)
        count += x.shape[0]
    if total is None or count == 0:
        raise ValueError("expected at least one frame to compute feature statistics from")
    mean = total / count
    return mean.float(), (squares / count - mean * mean).clamp(min=0.0).sqrt().float()


def epoch_order(n: int, seed: int, epoch: int, batch_size: int, crop_frames: int | None,
                lengths: list[int]) -> list[list[tuple[int, int]]]:
    """The epoch's global batches as lists of (utterance index, crop start frame)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=generator).tolist()
    starts = torch.rand(n, generator=generator, dtype=torch.float64).tolist()
    chosen = []
    for i, u in zip(order, starts, strict=True):
        spare = lengths[i] - crop_frames if crop_frames is not None else 0
        chosen.append((i, int(u * (spare + 1)) if spare > 0 else 0))
    return [chosen[k: k + batch_size] for k in range(0, n, batch_size)]


def pad(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """[L_i, D] each -> [B, max L, D] zero-padded, lengths [B]."""
    lengths = torch.tensor([len(x) for x in items], dtype=torch.long)
    return torch.nn.utils.rnn.pad_sequence(items, batch_first=True), lengths


def collate(data: Encoded, picks: list[tuple[int, int]], crop_frames: int | None) -> dict[str, torch.Tensor]:
    """A batch of (utterance, crop start) picks: model inputs and labels."""
    # A stored sequence reads just the crop's frames from disk; a list slices the tensor in memory.
    crop = getattr(data.speech, "crop", None) or (lambda i, start, n: data.speech[i][start: start + n])
    speech = [crop(i, start, crop_frames) if crop_frames else data.speech[i] for i, start in picks]
    batch = dict(zip(("speech", "speech_lengths"), pad(speech), strict=True))
    if data.text is not None:
        batch.update(zip(("text", "text_lengths"), pad([data.text[i] for i, _ in picks]), strict=True))
    batch["labels"] = data.labels[[i for i, _ in picks]]
    return batch
