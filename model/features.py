"""Frozen front ends: the ``S = f_speech(X)`` and ``E = f_text(W)`` of equations 1-2 of the paper.

The paper freezes large SSL speech models and BERT-large (D = 1024). Those live in
``model.pretrained`` behind the two interfaces of ``model.frontend`` (``speech_encoder("hf:microsoft/wavlm-large",
layer="all")``, ``text_encoder("hf:bert-large-uncased")``); this module provides the
factories, the learned layer mix and front ends that need no weights, so the whole pipeline runs offline:

- ``LogMel``: a log-mel filterbank. ``torch.stft`` (Hann window, 25 ms frames, 10 ms hop, no
  centring) -> power spectrum -> our own triangular HTK-mel filterbank -> natural log, floored at
  1e-10. Frames are not centred, so frame j depends only on samples [j*hop, j*hop + n_fft): the valid
  frames of a padded waveform are exactly those of the unpadded one.
- ``HashedWords``: each lower-cased word maps to a fixed pseudo-random unit vector seeded by a hash
  of the word, a frozen random embedding standing in for a pretrained text encoder.

A speech encoder's frame count is a chain of strided windows (``model.frontend.conv_frames``): log-mel is one window
(n_fft, hop), an SSL model's convolutional front end seven (wav2vec2: kernels 10,3,3,3,3,2,2, strides
5,2,2,2,2,2,2). The chain is what a feature cache records, so crops map seconds to frames without the model.

Layers: an encoder built with ``layer="all"`` returns [B, M, L, D] (frames first) and says so in
``layers`` (L; None for [B, M, D]). ``LayerWeights`` is the trainable part: the SER model owns it and
sums the L layers with softmax-normalised weights, as SUPERB's weighted-sum protocol.
"""

from __future__ import annotations

import hashlib
import math
import re

import torch
from torch import nn

from model.frontend import SAMPLE_RATE, SpeechEncoder, TextEncoder


def parse_layer(value: str | int) -> str | int:
    """``"last"``, ``"all"`` or a hidden-state index (``"6"`` -> 6); ValueError otherwise."""
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    if value in ("last", "all"):
        return value
    raise ValueError(f"expected layer last, all or a hidden-state index (0, 1, ...); got {value!r}")


class LayerWeights(nn.Module):
    """Trainable mix of an encoder's L layers: ``s = sum_l softmax(w)_l (h_l - mu_l) / sigma_l``.

    w starts at zero (equal weights). Each layer is first standardised with the training set's
    per-layer, per-dimension mean and deviation (buffers, set by ``set_normalization``), so layers
    of different scale compete on equal terms. [B, M, L, D] -> [B, M, D].
    """

    def __init__(self, layers: int, dim: int):
        super().__init__()
        if layers < 1:
            raise ValueError(f"expected layers >= 1, got {layers}")
        self.weights = nn.Parameter(torch.zeros(layers))
        self.register_buffer("mean", torch.zeros(layers, dim))
        self.register_buffer("std", torch.ones(layers, dim))

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Training-set (mean, std) per layer and dimension, [L, D] each; std floored as SERModel's."""
        self.mean.copy_(mean)
        self.std.copy_(std.clamp(min=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[2:] != self.mean.shape:
            raise ValueError(f"expected layered features [B, M, {self.mean.shape[0]}, {self.mean.shape[1]}], "
                             f"got {tuple(x.shape)}")
        # [B, M, D]
        return torch.einsum("bmld,l->bmd", (x - self.mean) / self.std, torch.softmax(self.weights, 0))


def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int, f_min: float, f_max: float) -> torch.Tensor:
    """Triangular filters evenly spaced on the HTK mel scale, peak 1 (no area normalisation).

    Returns [n_freqs, n_mels] so that ``power @ filters`` maps [..., n_freqs] to [..., n_mels].
    """
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"expected 0 <= f_min < f_max <= {sample_rate / 2}; got {f_min} and {f_max}")
    # [n_freqs]: the centre frequency of each rfft bin
    freqs = torch.linspace(0.0, sample_rate / 2, n_freqs, dtype=torch.float64)
    # [n_mels + 2]: band edges; filter i rises from edge i to i+1 and falls to i+2
    edges = mel_to_hz(torch.linspace(hz_to_mel(torch.tensor(f_min, dtype=torch.float64)).item(),
                                     hz_to_mel(torch.tensor(f_max, dtype=torch.float64)).item(),
                                     n_mels + 2, dtype=torch.float64))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    # [n_freqs, n_mels]
    rising = (freqs[:, None] - lower) / (centre - lower)
    falling = (upper - freqs[:, None]) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


class LogMel(nn.Module):
    """Log-mel filterbank energies, 100 frames per second at 16 kHz."""

    def __init__(self, n_mels: int = 80, n_fft: int = 400, hop: int = 160, sample_rate: int = SAMPLE_RATE,
                 f_min: float = 20.0, f_max: float | None = None):
        super().__init__()
        if n_mels < 1 or hop < 1 or n_fft < hop:
            raise ValueError(f"expected n_mels >= 1 and n_fft >= hop >= 1; got {n_mels}, {n_fft}, {hop}")
        self.n_fft, self.hop, self.sample_rate, self.dim = n_fft, hop, sample_rate, n_mels
        self.name = f"logmel{n_mels}"
        self.layers, self.frame_kernels, self.frame_strides = None, (n_fft,), (hop,)
        self.f_min, self.f_max = f_min, f_max or sample_rate / 2
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)
        filters = mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate, f_min, f_max or sample_rate / 2)
        self.register_buffer("filters", filters, persistent=False)

    def frames(self, samples: int) -> int:
        # Waveforms shorter than one window are zero-padded to one frame.
        return 1 + max(samples - self.n_fft, 0) // self.hop

    def describe(self) -> dict:
        return {"name": self.name, "dim": self.dim, "layers": None, "n_fft": self.n_fft, "hop": self.hop,
                "sample_rate": self.sample_rate, "f_min": self.f_min, "f_max": self.f_max,
                "frame_kernels": list(self.frame_kernels), "frame_strides": list(self.frame_strides)}

    @torch.no_grad()
    def encode(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if waveforms.dim() != 2 or lengths.shape != waveforms.shape[:1]:
            raise ValueError(f"expected waveforms [B, T] and lengths [B]; got {tuple(waveforms.shape)} "
                             f"and {tuple(lengths.shape)}")
        if waveforms.shape[1] < self.n_fft:
            waveforms = nn.functional.pad(waveforms, (0, self.n_fft - waveforms.shape[1]))
        # [B, n_fft // 2 + 1, M]
        spectrum = torch.stft(waveforms.float(), self.n_fft, self.hop, window=self.window, center=False,
                              return_complex=True)
        # [B, M, n_mels]
        mel = (spectrum.abs() ** 2).transpose(1, 2) @ self.filters
        frames = torch.tensor([self.frames(int(n)) for n in lengths], dtype=torch.long)
        features = torch.log(mel.clamp(min=1e-10))
        # Frames past a waveform's own end saw padding: zero them, as every encoder's padding is.
        valid = torch.arange(features.shape[1])[None, :] < frames[:, None]
        return features * valid[..., None], frames


class HashedWords:
    """A frozen word embedding that needs no weights: one seeded unit vector per word."""

    def __init__(self, dim: int = 64):
        if dim < 1:
            raise ValueError(f"expected dim >= 1, got {dim}")
        self.dim, self.name = dim, f"words{dim}"

    def describe(self) -> dict:
        return {"name": self.name, "dim": self.dim, "hash": "blake2b-8"}

    def vector(self, word: str) -> torch.Tensor:
        # blake2b, not hash(): Python salts str hashes per process, we need the same vector everywhere.
        seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little") >> 1
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(self.dim, generator=generator) / math.sqrt(self.dim)

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = [re.findall(r"[a-z']+", text.lower()) or [""] for text in texts]
        lengths = torch.tensor([len(words) for words in tokens], dtype=torch.long)
        # [B, N, D]
        features = torch.zeros(len(texts), int(lengths.max()) if texts else 0, self.dim)
        for b, words in enumerate(tokens):
            for n, word in enumerate(words):
                features[b, n] = self.vector(word)
        return features, lengths


SPEECH_ENCODERS = ("logmel", "hf:NAME_OR_PATH", "NAME+f0")
TEXT_ENCODERS = ("none", "words", "hf:NAME_OR_PATH")


def speech_encoder(name: str, n_mels: int = 80, layer: str | int = "last",
                   device: str | torch.device = "cpu") -> SpeechEncoder:
    """``logmel``, or ``hf:NAME_OR_PATH`` (a Hugging Face hub name or a local folder) with ``layer``
    ``"last"``, ``"all"`` or a hidden-state index (see ``model.pretrained``). A ``+f0`` suffix appends
    each frame's quantised F0 bin as one more column (``model.f0.WithF0``)."""
    layer = parse_layer(layer)
    if name.endswith("+f0") and len(name) > 3:
        from model.f0 import WithF0

        return WithF0(speech_encoder(name[:-3], n_mels, layer, device))
    if name == "logmel":
        if layer != "last":
            raise ValueError(f"logmel has one output; got layer {layer!r} (layers belong to hf: encoders)")
        return LogMel(n_mels=n_mels)
    if name.startswith("hf:") and len(name) > 3:
        from model.pretrained import HFSpeech

        return HFSpeech(name[3:], layer=layer, device=device)
    raise ValueError(f"unknown speech encoder {name!r}; known: {', '.join(SPEECH_ENCODERS)}")


def text_encoder(name: str, dim: int = 64, device: str | torch.device = "cpu") -> TextEncoder | None:
    """A text front end by name (``none``, ``words`` or ``hf:NAME_OR_PATH``), or None for speech only."""
    if name == "none":
        return None
    if name == "words":
        return HashedWords(dim)
    if name.startswith("hf:") and len(name) > 3:
        from model.pretrained import HFText

        return HFText(name[3:], device=device)
    raise ValueError(f"unknown text encoder {name!r}; known: {', '.join(TEXT_ENCODERS)}")
