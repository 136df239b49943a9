"""Fundamental frequency: a YIN pitch tracker, the 256-bin mel quantiser, and a front end that adds F0.

YIN (de Cheveigne & Kawahara, JASA 2002), per analysis frame starting at sample s, with integration
window W and lags tau in [0, tau_max]:

    d(tau)  = sum_{j<W} (x[s+j] - x[s+j+tau])^2 = E(s) + E(s+tau) - 2 r_s(tau)        step 2, difference
    d'(tau) = d(tau) * tau / sum_{k=1..tau} d(k),   d'(0) = 1                           step 3, CMND
    tau*    = the first tau >= tau_min with d'(tau) < threshold, then on down to the     step 4, absolute
              bottom of that dip (the next local minimum)                                threshold
    F0      = sample_rate / (tau* + parabolic offset of d around tau*)                    step 5

E(.) are sliding energies (a cumulative sum) and r_s the cross-correlation of the frame's first W
samples with the whole frame (one real FFT per frame, all frames at once). A frame whose d' never dips
below the threshold (noise, silence) is unvoiced: F0 = 0.

Quantisation (the graph-attention fusion paper's prosody tokens): 256 bins evenly spaced on the HTK
mel scale over 50-1100 Hz. Voiced F0 maps to bins 1..256 (clamped into the range); unvoiced frames
(F0 <= 0 or NaN) map to the reserved bin 0, which has its own learned embedding in the model.

``WithF0`` wraps any speech encoder: it appends the F0 bin of each of the encoder's frames as one
more feature column (a float holding an integer), so the bins are cropped, padded and cached with
the frames they belong to; ``speech_encoder("logmel+f0")`` (any encoder name + ``+f0``) builds it.
F0 is measured at each frame's centre, ``j * hop + field / 2``, from the encoder's chain of strided
windows (``frame_kernels``, ``frame_strides``: hop = product of strides, field = receptive field).
Single-layer encoders only: a layered ([B, M, L, D]) encoder has no column to append to.
"""

from __future__ import annotations

import numpy as np
import torch

from model.frontend import SAMPLE_RATE, SpeechEncoder, receptive_field

F0_MIN, F0_MAX = 50.0, 1100.0  # Hz, the quantiser's range and the tracker's default search range
F0_BINS = 256  # voiced bins; bin 0 is reserved for unvoiced frames
UNVOICED = 0
SUFFIX = "+f0"  # NAME+f0: the encoder NAME with the F0 column


def split_f0(name: str) -> tuple[str, str]:
    """``"hf:m@3+f0"`` -> ``("hf:m@3", "+f0")``; a name without the suffix -> ``(name, "")``."""
    if name.endswith(SUFFIX) and len(name) > len(SUFFIX):
        return name[: -len(SUFFIX)], SUFFIX
    return name, ""


def _mel(hz: np.ndarray) -> np.ndarray:
    # HTK mel, as model.features.hz_to_mel (float64 here, so bin edges are exact)
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def bin_edges(bins: int = F0_BINS, f_min: float = F0_MIN, f_max: float = F0_MAX) -> np.ndarray:
    """The ``bins + 1`` edges in Hz; voiced bin k (1-based) holds [edge k-1, edge k)."""
    mel = np.linspace(_mel(f_min), _mel(f_max), bins + 1)
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def quantise(f0: np.ndarray, bins: int = F0_BINS, f_min: float = F0_MIN, f_max: float = F0_MAX) -> np.ndarray:
    """F0 in Hz -> bin indices (int64): 0 unvoiced, 1..bins voiced; out-of-range F0 clamped to the ends."""
    f0 = np.asarray(f0, dtype=np.float64)
    edges = np.linspace(_mel(f_min), _mel(f_max), bins + 1)
    voiced = np.isfinite(f0) & (f0 > 0)
    index = np.searchsorted(edges, _mel(np.where(voiced, f0, f_min)), side="right")
    return np.where(voiced, np.clip(index, 1, bins), UNVOICED).astype(np.int64)


def yin(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, centres: np.ndarray | None = None, hop: int = 160,
        window: int | None = None, f_min: float = F0_MIN, f_max: float = F0_MAX,
        threshold: float = 0.15) -> np.ndarray:
    """F0 in Hz (0 where unvoiced) at each centre sample (default: every ``hop`` samples from 0).

    ``window`` is YIN's integration window W (default: the longest period, sample_rate / f_min); each
    frame reads W + tau_max + 1 samples around its centre, zero beyond the signal's ends.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1 or not 0 < f_min < f_max < sample_rate / 2:
        raise ValueError(f"expected 1-D samples and 0 < f_min < f_max < {sample_rate / 2}; got shape "
                         f"{x.shape}, f_min {f_min}, f_max {f_max}")
    tau_min, tau_max = max(int(sample_rate // f_max), 2), int(np.ceil(sample_rate / f_min))
    W = window or tau_max
    if centres is None:
        centres = np.arange(0, max(len(x), 1), hop)
    centres = np.asarray(centres, dtype=np.int64)
    span = W + tau_max + 1  # lags up to tau_max + 1 (the parabola's right neighbour)
    # [K, span]: frame k covers samples [c_k - span // 2, c_k - span // 2 + span)
    padded = np.concatenate([np.zeros(span), x, np.zeros(span)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, span)[centres - span // 2 + span]
    n = 1 << int(np.ceil(np.log2(span)))
    # r(tau) = sum_{j<W} x_j x_{j+tau}; no circular wrap for tau <= tau_max since W - 1 + tau_max < n
    spectrum = np.conj(np.fft.rfft(frames[:, :W], n)) * np.fft.rfft(frames, n)
    r = np.fft.irfft(spectrum, n)[:, : tau_max + 2]
    energy = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    # [K, tau_max + 2]: E(s + tau) over lags 0..tau_max + 1
    sliding = energy[:, W: W + tau_max + 2] - energy[:, : tau_max + 2]
    d = np.maximum(sliding[:, :1] + sliding - 2 * r, 0.0)
    cumulative = np.cumsum(d[:, 1:], axis=1)
    lags = np.arange(1, tau_max + 2)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = np.where(cumulative > 0, d[:, 1:] * lags / np.where(cumulative > 0, cumulative, 1.0), 1.0)
    # Step 4 over lags tau_min..tau_max: the first dip below the threshold, then the bottom of it.
    search = cmnd[:, tau_min: tau_max + 2]
    below = search[:, :-1] < threshold
    voiced = below.any(axis=1)
    first = below.argmax(axis=1)
    rising = (search[:, 1:] >= search[:, :-1]) & (np.arange(search.shape[1] - 1) >= first[:, None])
    tau = tau_min + np.where(rising.any(axis=1), rising.argmax(axis=1), search.shape[1] - 2)
    # Step 5: parabola through d at tau - 1, tau, tau + 1.
    rows = np.arange(len(frames))
    left, mid, right = d[rows, tau - 1], d[rows, tau], d[rows, tau + 1]
    curvature = left - 2 * mid + right
    offset = np.where(curvature > 0, 0.5 * (left - right) / np.where(curvature > 0, curvature, 1.0), 0.0)
    f0 = sample_rate / (tau + np.clip(offset, -1.0, 1.0))
    return np.where(voiced, f0, 0.0)


def frame_centres(encoder: SpeechEncoder, samples: int, frames: int) -> np.ndarray:
    """Sample index at the centre of each of ``frames`` frames the encoder made of ``samples`` samples."""
    kernels, strides = getattr(encoder, "frame_kernels", None), getattr(encoder, "frame_strides", None)
    if kernels and strides:
        return np.arange(frames) * int(np.prod(strides)) + receptive_field(tuple(kernels), tuple(strides)) // 2
    return ((np.arange(frames) + 0.5) * samples / max(frames, 1)).astype(np.int64)  # evenly, if unstated


class WithF0:
    """A speech encoder's features with one more column: the quantised F0 bin of each frame."""

    def __init__(self, inner: SpeechEncoder, sample_rate: int = SAMPLE_RATE):
        if getattr(inner, "layers", None) is not None:
            raise ValueError(f"+f0 needs a single-layer speech encoder; {inner.name} returns "
                             f"{inner.layers} layers (choose layer last or an index)")
        self.inner, self.sample_rate, self.threshold = inner, sample_rate, 0.15
        self.dim, self.name, self.layers = inner.dim + 1, f"{inner.name}+f0", None
        self.frame_kernels = getattr(inner, "frame_kernels", ())
        self.frame_strides = getattr(inner, "frame_strides", ())

    def frames(self, samples: int) -> int:
        return self.inner.frames(samples)

    def describe(self) -> dict:
        inner = self.inner.describe() if hasattr(self.inner, "describe") else {"name": self.inner.name}
        return {**inner, "name": self.name, "dim": self.dim,
                "f0": {"tracker": "yin", "threshold": self.threshold, "bins": F0_BINS, "hz": [F0_MIN, F0_MAX]}}

    def encode(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, frames = self.inner.encode(waveforms, lengths)
        # [B, M]: bin 0 on padded frames too; they are masked downstream
        bins = torch.zeros(features.shape[:2], dtype=features.dtype)
        for b, (length, count) in enumerate(zip(lengths.tolist(), frames.tolist(), strict=True)):
            wave = waveforms[b, :length].double().cpu().numpy()
            f0 = yin(wave, self.sample_rate, frame_centres(self.inner, length, count), threshold=self.threshold)
            bins[b, :count] = torch.from_numpy(quantise(f0)).to(features.dtype)
        return torch.cat([features, bins[..., None].to(features.device)], dim=-1), frames
