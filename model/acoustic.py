"""MFCC + chroma frames, the 46-dimensional input of ResLSTM-SA (Krasnoproshin and Vashkevich, 2026).

The paper's features are 34 MFCC and 12 chroma per frame (its repository: n_fft 4096, hop 2048 =
n_fft / 2, librosa's ``feature.mfcc`` and ``feature.chroma_stft`` with their defaults, audio at the
file's own rate: 48 kHz for RAVDESS, so frames are 85 ms long every 43 ms). We compute the same
quantities with torch, defaults as librosa's:

    X = STFT(x)            periodic Hann window of n_fft, hop, frames centred (n_fft/2 zeros each side)
    P = |X|^2              power spectrum [T, 1 + n_fft/2]
    mel = P M              128 Slaney-scale triangles, area-normalised ("slaney" norm), 0 Hz .. sr/2
    dB = 10 log10(max(mel, 1e-10)), floored at max(dB) - 80 over the utterance
    mfcc = DCT-II(dB, orthonormal)[:34]
    chroma = P C / max_c (P C)   C: Gaussian bumps on the pitch-class circle per FFT bin, weighted
                                 towards octave 5 (width 2 octaves), columns L2-normalised, C first;
                                 each frame divided by its largest bin

Tuning: as librosa's ``chroma_stft``, each utterance's deviation from A440 is estimated
(``estimate_tuning``: spectral peaks of P between 150 Hz and 4 kHz above a tenth of their frame's
maximum, refined by parabolic interpolation; of those at least as strong as their median, the
most common offset from the nearest pitch class, in steps of 0.01) and the chroma filters are
shifted by it; ``tuning=0.0`` fixes A440 instead. The authors then standardise every dimension
with the mean and deviation over all frames (``standardize_stats``).

Checked against code no one here wrote (tests): the mel and chroma filterbanks and the dB
spectrogram against Hugging Face transformers' numpy audio utilities (adapted from librosa), the
DCT against ``scipy.fft.dct``, chroma on pure tones against the closed form (440 Hz is A).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class AcousticConfig:
    n_mfcc: int = 34
    n_chroma: int = 12
    n_fft: int = 4096
    hop: int = 2048
    n_mels: int = 128  # librosa's default for MFCC
    top_db: float = 80.0  # librosa's power_to_db default
    sample_rate: int | None = None  # None: each file's own rate, as the authors (librosa sr=None)
    tuning: float | None = None  # chroma's offset from A440 in pitch classes; None: estimated per utterance

    @property
    def dim(self) -> int:
        return self.n_mfcc + self.n_chroma

    @property
    def name(self) -> str:
        return f"mfcc{self.n_mfcc}+chroma{self.n_chroma}"

    def to_dict(self) -> dict:
        return asdict(self)


def hz_to_slaney_mel(hz: torch.Tensor) -> torch.Tensor:
    """Slaney's mel scale (Auditory Toolbox): linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    linear = hz / (200.0 / 3.0)
    step = math.log(6.4) / 27.0  # 27 mels per factor 6.4 in frequency
    return torch.where(hz >= 1000.0, 15.0 + torch.log(torch.clamp(hz, min=1e-10) / 1000.0) / step, linear)


def slaney_mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    step = math.log(6.4) / 27.0
    return torch.where(mel >= 15.0, 1000.0 * torch.exp(step * (mel - 15.0)), mel * (200.0 / 3.0))


def slaney_mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 0.0,
                          f_max: float | None = None) -> torch.Tensor:
    """Triangles evenly spaced in Slaney mels, each scaled to area 1 in Hz: [n_freqs, n_mels]."""
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"expected 0 <= f_min < f_max <= {sample_rate / 2}; got {f_min} and {f_max}")
    freqs = torch.linspace(0.0, sample_rate / 2, n_freqs, dtype=torch.float64)  # [n_freqs]
    low, high = hz_to_slaney_mel(torch.tensor([f_min, f_max], dtype=torch.float64))
    edges = slaney_mel_to_hz(torch.linspace(float(low), float(high), n_mels + 2, dtype=torch.float64))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]  # [n_mels] each
    rising = (freqs[:, None] - lower) / (centre - lower)
    falling = (upper - freqs[:, None]) / (upper - centre)
    triangles = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return (triangles * (2.0 / (upper - lower))).float()


def chroma_filterbank(n_fft: int, sample_rate: int, n_chroma: int = 12, tuning: float = 0.0,
                      octave_centre: float = 5.0, octave_width: float = 2.0) -> torch.Tensor:
    """Weights from each rfft bin to each pitch class, C first: [1 + n_fft // 2, n_chroma].

    Bin k >= 1 at f_k has pitch p_k = n_chroma log2(f_k / f_A0) in pitch-class units above A0
    (27.5 Hz at tuning 0); the DC bin is placed 1.5 octaves below bin 1. Its weight on class c is a
    Gaussian in the circular distance d = ((p_k - c + n/2) mod n) - n/2 with deviation w_k / 2,
    w_k = max(p_{k+1} - p_k, 1) (the bin's own width); each bin's weights have unit L2 norm, then
    are scaled by a Gaussian over octaves, exp(-((p_k / n - centre) / width)^2 / 2).
    """
    if n_chroma < 1 or n_fft < 2:
        raise ValueError(f"expected n_chroma >= 1 and n_fft >= 2; got {n_chroma} and {n_fft}")
    a0 = 440.0 * 2.0 ** (tuning / n_chroma) / 16.0
    freqs = torch.arange(1, n_fft // 2 + 2, dtype=torch.float64) * (sample_rate / n_fft)  # bins 1 .. n/2+1
    pitch = n_chroma * torch.log2(freqs / a0)
    pitch = torch.cat([pitch[:1] - 1.5 * n_chroma, pitch])  # the DC bin, then bins 1 .. n/2+1
    width = torch.clamp(pitch[1:] - pitch[:-1], min=1.0)  # [n/2 + 2]: bins 0 .. n/2+1
    pitch = pitch[: n_fft // 2 + 1]
    width = width[: n_fft // 2 + 1]
    half = round(n_chroma / 2)
    classes = torch.arange(n_chroma, dtype=torch.float64)
    distance = torch.remainder(pitch[:, None] - classes + half, n_chroma) - half  # [n_freqs, n_chroma]
    weights = torch.exp(-0.5 * (2.0 * distance / width[:, None]) ** 2)
    weights = weights / weights.norm(dim=1, keepdim=True)
    weights = weights * torch.exp(-0.5 * ((pitch / n_chroma - octave_centre) / octave_width) ** 2)[:, None]
    # Class 0 is A (pitch is counted from A0); C, 3 classes up, comes first.
    return torch.roll(weights, -3 * (n_chroma // 12), dims=1).float()


def dct_matrix(n: int, k: int) -> torch.Tensor:
    """Orthonormal DCT-II as a matrix: ``x @ D`` gives the first ``k`` coefficients of x [..., n]."""
    i = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(k, dtype=torch.float64)[None, :]
    basis = torch.cos(math.pi * (i + 0.5) * j / n) * math.sqrt(2.0 / n)
    basis[:, 0] /= math.sqrt(2.0)
    return basis.float()


class Acoustic:
    """``features(samples, sample_rate) -> [T, n_mfcc + n_chroma]``; filterbanks kept per sample rate."""

    def __init__(self, config: AcousticConfig = AcousticConfig()):
        if min(config.n_mfcc, config.n_chroma, config.hop) < 1 or config.n_fft < config.hop:
            raise ValueError(f"expected positive sizes and n_fft >= hop; got {config}")
        if config.n_mfcc > config.n_mels:
            raise ValueError(f"n_mfcc ({config.n_mfcc}) must not exceed n_mels ({config.n_mels})")
        self.config, self.dim, self.name = config, config.dim, config.name
        self.window = torch.hann_window(config.n_fft, periodic=True, dtype=torch.float64)
        self.dct = dct_matrix(config.n_mels, config.n_mfcc).double()
        self._banks: dict[tuple[str, int, float], torch.Tensor] = {}

    def _bank(self, kind: str, sample_rate: int, tuning: float = 0.0) -> torch.Tensor:
        key = (kind, sample_rate, tuning)
        if key not in self._banks:
            c = self.config
            self._banks[key] = (slaney_mel_filterbank(c.n_fft // 2 + 1, c.n_mels, sample_rate) if kind == "mel"
                                else chroma_filterbank(c.n_fft, sample_rate, c.n_chroma, tuning)).double()
        return self._banks[key]

    def power(self, samples: np.ndarray | torch.Tensor) -> torch.Tensor:
        """|STFT|^2 with centred frames: [T, 1 + n_fft // 2], T = 1 + len // hop."""
        x = torch.as_tensor(np.asarray(samples), dtype=torch.float64)
        if x.dim() != 1 or x.numel() == 0:
            raise ValueError(f"expected one non-empty channel of samples; got shape {tuple(x.shape)}")
        c = self.config
        spectrum = torch.stft(x, c.n_fft, c.hop, window=self.window, center=True, pad_mode="constant",
                              return_complex=True)
        return spectrum.abs().square().T

    def features(self, samples: np.ndarray | torch.Tensor, sample_rate: int) -> torch.Tensor:
        """MFCC then chroma per frame, float32 [T, dim]."""
        power = self.power(samples)
        tuning = self.config.tuning
        if tuning is None:
            tuning = estimate_tuning(power.numpy(), sample_rate, self.config.n_chroma)
        chroma_bank = self._bank("chroma", int(sample_rate), float(tuning))
        db = 10.0 * torch.log10(torch.clamp(power @ self._bank("mel", int(sample_rate)), min=1e-10))  # [T, n_mels]
        db = torch.maximum(db, db.max() - self.config.top_db)
        mfcc = db @ self.dct  # [T, n_mfcc]
        chroma = power @ chroma_bank  # [T, n_chroma]
        peak = chroma.max(dim=1, keepdim=True).values
        chroma = chroma / torch.where(peak > torch.finfo(torch.float32).tiny, peak, 1.0)  # silent frames stay 0
        return torch.cat([mfcc, chroma], dim=1).float()


def estimate_tuning(power: np.ndarray, sample_rate: int, n_chroma: int = 12, f_min: float = 150.0,
                    f_max: float = 4000.0, threshold: float = 0.1, resolution: float = 0.01) -> float:
    """Offset from A440 in pitch classes, [-0.5, 0.5), of the spectral peaks of ``power`` [T, F].

    Peaks: bins in [f_min, f_max) that are local maxima over frequency of the spectrum zeroed
    below ``threshold`` times its frame's maximum, at bin k + s with the parabola's shift
    s = -(P[k+1] - P[k-1]) / (2 (P[k+1] + P[k-1] - 2 P[k])) (0 when the vertex lies beyond a
    neighbour), strength P[k] + s (P[k+1] - P[k-1]) / 4. Of the peaks at least as strong as their
    median, each offset n log2(f / f_A) mod 1 (wrapped to [-0.5, 0.5)) is counted in bins of
    ``resolution``; the lower edge of the fullest bin is the estimate (librosa's ``estimate_tuning``).
    """
    S = np.asarray(power, dtype=np.float64).T  # [F, T]
    n_fft = 2 * (S.shape[0] - 1)
    left, mid, right = S[:-2], S[1:-1], S[2:]
    curvature, slope = right + left - 2.0 * mid, (right - left) / 2.0
    shift = np.zeros_like(S)
    vertex = np.abs(slope) < np.abs(curvature)
    np.divide(-slope, curvature, out=shift[1:-1], where=vertex)
    strength = S + 0.5 * np.gradient(S, axis=0) * shift
    kept = S * (S > threshold * S.max(axis=0, keepdims=True))
    peak = np.zeros_like(S, dtype=bool)
    peak[1:-1] = (kept[1:-1] > kept[:-2]) & (kept[1:-1] >= kept[2:])
    peak[-1] = kept[-1] > kept[-2]
    freqs = np.arange(S.shape[0]) * sample_rate / n_fft
    peak &= ((freqs >= f_min) & (freqs < f_max))[:, None]
    pitches = (np.nonzero(peak)[0] + shift[peak]) * sample_rate / n_fft
    strengths = strength[peak]
    if not np.any(pitches > 0):
        return 0.0
    chosen = pitches[(strengths >= np.median(strengths[pitches > 0])) & (pitches > 0)]
    residual = np.mod(n_chroma * np.log2(chosen / (440.0 / 16.0)), 1.0)
    residual[residual >= 0.5] -= 1.0
    counts, edges = np.histogram(residual, np.linspace(-0.5, 0.5, int(np.ceil(1.0 / resolution)) + 1))
    return float(edges[np.argmax(counts)])


def standardize_stats(features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and deviation over every frame of ``features`` (deviation floored at 1e-4)."""
    frames = torch.cat([f.double() for f in features])
    mean = frames.mean(0)
    std = torch.sqrt(torch.clamp((frames**2).mean(0) - mean**2, min=1e-8))
    return mean.float(), std.float()
