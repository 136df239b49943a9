"""What every front end shares: the sample rate, the encoder interfaces, and the frame arithmetic.

A speech encoder's frame count is a chain of strided windows (``conv_frames``): log-mel is one window
(n_fft, hop), an SSL model's convolutional front end seven (wav2vec2: kernels 10,3,3,3,3,2,2, strides
5,2,2,2,2,2,2). ``model.features`` (log-mel, hashed words, the factories), ``model.pretrained`` (Hugging
Face encoders) and ``model.f0`` (the ``NAME+f0`` front end) all build on this module, which imports none of
them, so the factories in ``features`` can reach the other two without an import circle.
"""

from __future__ import annotations

from typing import Protocol

import torch

SAMPLE_RATE = 16_000


class SpeechEncoder(Protocol):
    """A frozen speech encoder. Pretrained models (WavLM, wav2vec2, ...) implement the same."""

    dim: int  # feature width D
    name: str  # recorded in results rows as the front end
    layers: int | None  # None: features [B, M, D]; L: every layer, [B, M, L, D]
    frame_kernels: tuple[int, ...]  # the strided windows that make frames (see conv_frames)
    frame_strides: tuple[int, ...]

    def encode(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """waveforms [B, T_samples] (zero-padded), lengths [B] -> features [B, M, D], frame lengths [B]."""
        ...

    def frames(self, samples: int) -> int:
        """Frames produced for a waveform of ``samples`` samples (maps crop seconds to frames)."""
        ...

    def describe(self) -> dict:
        """What a feature cache records to tell this encoder apart from any other (JSON-serialisable)."""
        ...


class TextEncoder(Protocol):
    """A frozen text encoder (BERT-large in the paper)."""

    dim: int
    name: str

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """texts -> features [B, N, D] (zero-padded), token lengths [B]; N >= 1 even for empty text."""
        ...

    def describe(self) -> dict: ...


def conv_frames(samples: int, kernels: tuple[int, ...], strides: tuple[int, ...]) -> int:
    """Frames out of a chain of unpadded strided windows, ``L <- floor((L - k) / s) + 1`` per window, at least 1.

    wav2vec2's front end gives ``floor((T - 400) / 320) + 1``; inputs shorter than the receptive field
    are zero-padded to it by the encoders, so they give one frame.
    """
    length = samples
    for kernel, stride in zip(kernels, strides, strict=True):
        length = (length - kernel) // stride + 1
        if length < 1:
            return 1
    return length


def receptive_field(kernels: tuple[int, ...], strides: tuple[int, ...]) -> int:
    """Samples that make exactly one frame: the shortest input ``conv_frames`` does not pad."""
    field = 1
    for kernel, stride in reversed(list(zip(kernels, strides, strict=True))):
        field = (field - 1) * stride + kernel
    return field

