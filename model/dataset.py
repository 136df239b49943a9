"""A split's features in memory, random crops and padded batches.

The paper normalises waveforms with the training set's mean and standard deviation, crops them to
5.5 s for training and evaluates whole utterances. Here each utterance is encoded once, whole, and
a crop of ``crop_seconds`` becomes a crop of its frame sequence starting on a frame boundary; for
the log-mel front end (frames not centred) that is exactly the encoding of the cropped waveform.
Crop offsets come from a generator seeded per epoch, drawn for the whole global batch in order, so
every rank of a data-parallel run and a single process draw the same crops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model.data import Utterance
from model.features import SpeechEncoder, TextEncoder


@dataclass
class Encoded:
    ids: list[str]
    labels: torch.Tensor  # [n] class indices
    speech: list[torch.Tensor]  # [M_i, D_s] each
    text: list[torch.Tensor] | None  # [N_i, D_t] each
    skipped: int  # unreadable files skipped (only with skip_bad_audio)

    def __len__(self) -> int:
        return len(self.ids)


Loaded = list[tuple[Utterance, np.ndarray]]


def waveform_stats(loaded: Loaded) -> tuple[float, float]:
    """Mean and standard deviation over every sample of the training split (the paper's normalisation)."""
    total, squares, count = 0.0, 0.0, 0
    for _, samples in loaded:
        wave = samples.astype(np.float64)
        total, squares, count = total + wave.sum(), squares + (wave**2).sum(), count + wave.size
    mean = total / count
    return mean, max(float(np.sqrt(max(squares / count - mean**2, 0.0))), 1e-8)


def encode(loaded: Loaded, classes: tuple[str, ...], speech: SpeechEncoder, text: TextEncoder | None,
           wave_mean: float, wave_std: float, skipped: int = 0) -> Encoded:
    """Each utterance normalised, encoded whole, kept as features only."""
    ids, labels, feats, tokens = [], [], [], []
    for utterance, samples in loaded:
        wave = torch.from_numpy((samples - wave_mean) / wave_std).float()[None]
        features, frames = speech.encode(wave, torch.tensor([wave.shape[1]]))
        feats.append(features[0, : int(frames[0])])
        ids.append(utterance.id)
        labels.append(classes.index(utterance.label))
        if text is not None:
            embedded, count = text.encode([utterance.transcript or ""])
            tokens.append(embedded[0, : int(count[0])])
    return Encoded(ids, torch.tensor(labels, dtype=torch.long), feats, tokens if text is not None else None,
                   skipped)


def feature_stats(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and standard deviation over every frame of every item."""
    frames = torch.cat(items).double()
    return frames.mean(0).float(), frames.std(0, correction=0).float()


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
    speech = [data.speech[i][start: start + crop_frames] if crop_frames else data.speech[i] for i, start in picks]
    batch = dict(zip(("speech", "speech_lengths"), pad(speech), strict=True))
    if data.text is not None:
        batch.update(zip(("text", "text_lengths"), pad([data.text[i] for i, _ in picks]), strict=True))
    batch["labels"] = data.labels[[i for i, _ in picks]]
    return batch
