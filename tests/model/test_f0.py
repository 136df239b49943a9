"""The YIN tracker on signals of known F0, the mel quantiser's bin edges, and the F0 front end's alignment."""

import numpy as np
import pytest
import torch

from model.f0 import F0_BINS, UNVOICED, WithF0, bin_edges, frame_centres, quantise, yin
from model.features import LogMel, hz_to_mel

SR = 16_000
T = np.arange(SR) / SR  # one second


@pytest.mark.parametrize("f0", [52.0, 100.0, 137.5, 220.0, 440.0, 1000.0, 1090.0])
def test_pure_tones_within_0_1_percent(f0):
    estimate = yin(np.sin(2 * np.pi * f0 * T + 0.3), SR)[5:-5]  # frames wholly inside the tone
    assert np.all(np.abs(estimate / f0 - 1) < 1e-3), (estimate.min(), estimate.max())


@pytest.mark.parametrize("harmonics, f0", [(range(1, 11), 150.0), (range(2, 7), 200.0), ((1, 2, 3), 97.0)],
                         ids=["sawtooth-150", "missing-fundamental-200", "strong-overtones-97"])
def test_harmonic_signals_no_octave_errors(harmonics, f0):
    # Amplitudes rise with the harmonic for the third case: the second harmonic dominates, a classic
    # cause of octave-up errors in autocorrelation trackers; YIN's CMND must still find the period.
    weights = {1: 0.3, 2: 1.0, 3: 0.8} if f0 == 97.0 else {k: 1 / k for k in harmonics}
    x = sum(weights[k] * np.sin(2 * np.pi * k * f0 * T + k) for k in harmonics)
    estimate = yin(x, SR)[5:-5]
    assert np.all(np.abs(estimate / f0 - 1) < 2e-3), (estimate.min(), estimate.max())


def test_noise_and_silence_are_unvoiced_and_a_gated_tone_is_located():
    rng = np.random.default_rng(0)
    assert np.all(yin(rng.standard_normal(SR), SR) == 0)
    assert np.all(yin(np.zeros(SR), SR) == 0)
    gated = np.sin(2 * np.pi * 220 * T) * ((T >= 0.3) & (T < 0.6))
    voiced = yin(gated, SR, hop=160) > 0
    times = np.arange(len(voiced)) * 160 / SR
    assert voiced[(times > 0.33) & (times < 0.57)].all()
    assert not voiced[(times < 0.27) | (times > 0.63)].any()


def test_bin_edges_are_even_on_the_mel_scale_and_map_to_their_bins():
    edges = bin_edges()
    assert len(edges) == F0_BINS + 1
    np.testing.assert_allclose(edges[[0, -1]], [50.0, 1100.0], rtol=1e-12)
    mel = hz_to_mel(torch.tensor(edges, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(np.diff(mel), np.full(F0_BINS, (mel[-1] - mel[0]) / F0_BINS), rtol=1e-9)
    inner = edges[1:-1]
    # Bin k (1-based) holds [edge k-1, edge k): just above an edge is the next bin, just below the previous.
    np.testing.assert_array_equal(quantise(inner * (1 + 1e-9)), np.arange(2, F0_BINS + 1))
    np.testing.assert_array_equal(quantise(inner * (1 - 1e-9)), np.arange(1, F0_BINS))
    np.testing.assert_array_equal(quantise([50.0, 1100.0, 20.0, 5000.0]), [1, F0_BINS, 1, F0_BINS])
    np.testing.assert_array_equal(quantise([0.0, -3.0, np.nan]), [UNVOICED] * 3)


def test_with_f0_appends_one_bin_per_encoder_frame_at_its_centre():
    encoder = LogMel(n_mels=8)
    wrapped = WithF0(encoder)
    assert (wrapped.dim, wrapped.name, wrapped.frames(4000)) == (9, "logmel8+f0", encoder.frames(4000))
    centres = frame_centres(encoder, 4000, encoder.frames(4000))
    assert centres[0] == 200 and np.all(np.diff(centres) == 160)  # n_fft / 2, then the hop
    # A 300 Hz tone whose first half is silent; the second utterance is shorter (padded in the batch).
    first = np.sin(2 * np.pi * 300 * T[:8000]) * (T[:8000] >= 0.25)
    waves = torch.zeros(2, 8000)
    waves[0], waves[1, :5000] = torch.from_numpy(first), torch.from_numpy(first[:5000])
    features, frames = wrapped.encode(waves, torch.tensor([8000, 5000]))
    plain, _ = encoder.encode(waves, torch.tensor([8000, 5000]))
    assert features.shape == (2, encoder.frames(8000), 9)
    torch.testing.assert_close(features[..., :8], plain, rtol=0, atol=0)
    bins = features[0, : int(frames[0]), 8].long().numpy()
    seconds = frame_centres(encoder, 8000, int(frames[0])) / SR
    assert np.all(bins[(seconds > 0.28) & (seconds < 0.47)] == quantise([300.0])[0])
    assert np.all(bins[seconds < 0.23] == UNVOICED)
    assert torch.all(features[1, int(frames[1]):, 8] == UNVOICED)


def test_with_f0_rejects_layered_encoders_and_names_itself_in_the_factory():
    from model.features import speech_encoder

    class Layered:
        name, dim, layers = "hf:x@all", 4, 3

    with pytest.raises(ValueError, match="single-layer speech encoder; hf:x@all returns 3 layers"):
        WithF0(Layered())
    wrapped = speech_encoder("logmel+f0", n_mels=8)
    assert isinstance(wrapped, WithF0) and wrapped.describe()["f0"]["bins"] == F0_BINS
