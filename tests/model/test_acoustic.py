"""MFCC + chroma against code no one here wrote (transformers' numpy audio utilities, scipy's DCT)
and against closed forms on pure tones."""

import numpy as np
import pytest
import scipy.fft
import torch
from transformers.audio_utils import chroma_filter_bank, mel_filter_bank, spectrogram, window_function

from model.acoustic import (
    PITCH_CLASSES,
    Acoustic,
    AcousticConfig,
    chroma_filterbank,
    dct_matrix,
    estimate_tuning,
    slaney_mel_filterbank,
    standardize_stats,
)

CASES = [(48_000, 4096, 128), (16_000, 512, 40), (22_050, 1000, 64)]
IDS = ["sr48k-nfft4096-mel128", "sr16k-nfft512-mel40", "sr22050-nfft1000-mel64"]


@pytest.mark.parametrize(("rate", "n_fft", "n_mels"), CASES, ids=IDS)
def test_slaney_mel_filterbank_matches_transformers(rate, n_fft, n_mels):
    ours = slaney_mel_filterbank(n_fft // 2 + 1, n_mels, rate).numpy()
    theirs = mel_filter_bank(n_fft // 2 + 1, n_mels, 0.0, rate / 2, rate, norm="slaney", mel_scale="slaney")
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("tuning", [0.0, -0.37], ids=["A440", "tuning-0.37"])
@pytest.mark.parametrize(("rate", "n_fft", "n_mels"), CASES, ids=IDS)
def test_chroma_filterbank_matches_transformers(rate, n_fft, n_mels, tuning):
    ours = chroma_filterbank(n_fft, rate, tuning=tuning).numpy()
    theirs = chroma_filter_bank(n_fft, 12, rate, tuning=tuning, power=2.0, weighting_parameters=(5.0, 2.0),
                                start_at_c_chroma=True)
    np.testing.assert_allclose(ours, theirs.T, rtol=1e-5, atol=1e-7)


def _speechlike(rate, seconds, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    wave = 0.3 * np.sin(2 * np.pi * (180 * t + 4 * np.sin(2 * np.pi * 3 * t))) + 0.1 * np.sin(2 * np.pi * 700 * t)
    return (wave * (t < seconds * 0.8) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize(("rate", "seconds"), [(48_000, 1.3), (16_000, 0.9)], ids=["48k-1.3s", "16k-0.9s"])
def test_log_mel_and_mfcc_match_transformers_spectrogram_and_scipy_dct(rate, seconds):
    acoustic = Acoustic()
    x = _speechlike(rate, seconds)
    bank = mel_filter_bank(2049, 128, 0.0, rate / 2, rate, norm="slaney", mel_scale="slaney")
    # [n_mels, T]: power spectrum of centred, zero-padded Hann frames, in dB floored 80 below its peak.
    db = spectrogram(x, window_function(4096, "hann"), 4096, 2048, power=2.0, center=True, pad_mode="constant",
                     mel_filters=bank, log_mel="dB", db_range=80.0, dtype=np.float64)
    features = acoustic.features(x, rate).numpy()
    assert features.shape == (1 + len(x) // 2048, 46) == (db.shape[1], 46)
    expected = scipy.fft.dct(db.T, type=2, norm="ortho", axis=1)[:, :34]
    np.testing.assert_allclose(features[:, :34], expected, rtol=1e-4, atol=1e-3)


def test_dct_matrix_is_scipys_orthonormal_dct():
    x = np.random.default_rng(1).standard_normal((5, 37))
    ours = torch.from_numpy(x).float() @ dct_matrix(37, 13)
    np.testing.assert_allclose(ours.numpy(), scipy.fft.dct(x, type=2, norm="ortho")[:, :13], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("hz", "pitch_class"), [(440.0, "A"), (261.626, "C"), (369.994, "F#"), (1318.51, "E")],
                         ids=["A4", "C4", "F#4", "E6"])
def test_pure_tone_chroma_peaks_at_its_pitch_class(hz, pitch_class):
    rate = 48_000
    t = np.arange(rate) / rate
    chroma = Acoustic().features(0.5 * np.sin(2 * np.pi * hz * t), rate)[:, 34:]
    inner = chroma[1:-1]  # frames wholly inside the tone
    assert torch.all(inner.argmax(1) == PITCH_CLASSES.index(pitch_class))
    torch.testing.assert_close(inner.max(1).values, torch.ones(len(inner)))  # each frame scaled to peak 1
    # The neighbouring classes a semitone away get less than half the peak.
    k = PITCH_CLASSES.index(pitch_class)
    assert torch.all(inner[:, [(k - 1) % 12, (k + 1) % 12]] < 0.5)


@pytest.mark.parametrize("offset", [0.0, 0.3, -0.42], ids=["in-tune", "sharp-0.3", "flat-0.42"])
def test_tuning_of_a_detuned_harmonic_tone_is_its_offset(offset):
    rate = 16_000
    t = np.arange(rate) / rate
    f0 = 196.0 * 2 ** (offset / 12)  # G3, shifted by `offset` pitch classes
    wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3, 4))
    acoustic = Acoustic()
    # Parabolic peak interpolation on a Hann-windowed power spectrum is biased by a few hundredths.
    assert estimate_tuning(acoustic.power(wave).numpy(), rate) == pytest.approx(offset, abs=0.05)
    # With its tuning estimated, the tone's chroma still peaks at G in every inner frame.
    assert torch.all(acoustic.features(wave, rate)[1:-1, 34:].argmax(1) == PITCH_CLASSES.index("G"))


def test_silence_gives_finite_features_and_zero_chroma():
    features = Acoustic().features(np.zeros(10_000, dtype=np.float32), 16_000)
    assert torch.isfinite(features).all()
    assert torch.all(features[:, 34:] == 0)


def test_bad_configuration_and_input():
    with pytest.raises(ValueError, match="n_mfcc"):
        Acoustic(AcousticConfig(n_mfcc=200))
    with pytest.raises(ValueError, match="non-empty"):
        Acoustic().features(np.zeros((2, 100)), 16_000)


def test_standardize_stats_are_numpys_over_all_frames():
    parts = [torch.randn(n, 46) * 3 + 1 for n in (5, 17, 2)]
    mean, std = standardize_stats(parts)
    frames = torch.cat(parts).numpy()
    np.testing.assert_allclose(mean.numpy(), frames.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std.numpy(), frames.std(0), rtol=1e-5)
