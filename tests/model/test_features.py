"""Front ends against code no one here wrote: Hugging Face transformers' numpy audio utilities."""

import numpy as np
import pytest
import torch
from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

from model.features import HashedWords, LogMel, mel_filterbank, speech_encoder, text_encoder
from model.frontend import conv_frames, receptive_field


@pytest.mark.parametrize(("n_mels", "f_min", "f_max"), [(80, 20.0, 8000.0), (23, 0.0, 7000.0)],
                         ids=["M80-20-8000", "M23-0-7000"])
def test_filterbank_matches_transformers_htk(n_mels, f_min, f_max):
    ours = mel_filterbank(201, n_mels, 16_000, f_min, f_max).double().numpy()
    reference = mel_filter_bank(num_frequency_bins=201, num_mel_filters=n_mels, min_frequency=f_min,
                                max_frequency=f_max, sampling_rate=16_000, norm=None, mel_scale="htk")
    # Tolerance: float32 rounding of weights in [0, 1].
    np.testing.assert_allclose(ours, reference, atol=1e-6)


@pytest.mark.parametrize("samples", [400, 16_037], ids=["N400", "N16037"])
def test_log_mel_matches_transformers_spectrogram(samples):
    rng = np.random.default_rng(0)
    wave = rng.standard_normal(samples).astype(np.float32) * 0.1
    encoder = LogMel(n_mels=40)
    features, frames = encoder.encode(torch.from_numpy(wave)[None], torch.tensor([samples]))
    filters = mel_filter_bank(num_frequency_bins=201, num_mel_filters=40, min_frequency=20.0, max_frequency=8000.0,
                              sampling_rate=16_000, norm=None, mel_scale="htk")
    reference = spectrogram(wave.astype(np.float64), window_function(400, "hann", periodic=True), frame_length=400,
                            hop_length=160, power=2.0, center=False, mel_filters=filters, mel_floor=1e-10,
                            log_mel="log", dtype=np.float64)
    assert frames.item() == reference.shape[1] == 1 + (samples - 400) // 160
    # Tolerance: float32 STFT against float64, in the log domain.
    np.testing.assert_allclose(features[0].double().numpy(), reference.T, atol=2e-4)


def test_log_mel_of_a_tone_peaks_in_its_band():
    # Closed form: a 1 kHz sine puts its energy in the filter whose centre is nearest 1 kHz.
    t = torch.arange(16_000) / 16_000
    features, _ = LogMel(n_mels=40).encode(torch.sin(2 * torch.pi * 1000 * t)[None], torch.tensor([16_000]))
    centres = mel_filterbank(201, 40, 16_000, 20.0, 8000.0).argmax(0) * 40.0  # Hz of each filter's peak bin
    assert features[0].mean(0).argmax() == (centres - 1000).abs().argmin()


def test_padding_leaves_valid_frames_unchanged():
    torch.manual_seed(0)
    encoder = LogMel(n_mels=16)
    lengths = torch.tensor([3_201, 1_999, 399])
    waves = torch.randn(3, 3_201)
    waves[1, 1_999:] = 0.0
    waves[2, 399:] = 0.0
    batch, frames = encoder.encode(waves, lengths)
    assert frames.tolist() == [encoder.frames(n) for n in lengths.tolist()] == [18, 10, 1]
    for b, n in enumerate(lengths.tolist()):
        alone, _ = encoder.encode(waves[b: b + 1, :n], torch.tensor([n]))
        # Frames never reach past their own samples (no centring); tolerance covers batched-FFT rounding.
        torch.testing.assert_close(batch[b, : frames[b]], alone[0], atol=1e-5, rtol=0)
        assert batch[b, frames[b]:].abs().sum() == 0


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"expected waveforms \[B, T\]"):
        LogMel().encode(torch.zeros(400), torch.tensor([400]))
    with pytest.raises(ValueError, match="unknown speech encoder 'wavlm'; known: logmel"):
        speech_encoder("wavlm")
    with pytest.raises(ValueError, match="unknown text encoder"):
        text_encoder("bert")


def test_hashed_words_are_stable_and_distinct():
    encoder = HashedWords(dim=24)
    features, lengths = encoder.encode(["Wow, really wow!", ""])
    assert lengths.tolist() == [3, 1] and features.shape == (2, 3, 24)
    assert torch.equal(features[0, 0], features[0, 2])  # same word, same vector
    assert torch.equal(features[0, 0], HashedWords(dim=24).vector("wow"))  # and in a new instance
    assert (features[0, 0] - features[0, 1]).abs().max() > 0.1
    assert features[1, 1:].abs().sum() == 0  # padding
    assert text_encoder("none") is None


def test_conv_frames_and_receptive_field():
    # One window is log-mel's own count; wav2vec2's stack is DESIGN.md's closed form floor((T - 400) / 320) + 1.
    log_mel = LogMel(n_mels=16)
    wav2vec2 = ((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2))
    for samples in (1, 399, 400, 401, 559, 560, 16_000, 88_000):
        assert conv_frames(samples, log_mel.frame_kernels, log_mel.frame_strides) == log_mel.frames(samples)
        assert conv_frames(samples, *wav2vec2) == max((samples - 400) // 320 + 1, 1)
    assert receptive_field(*wav2vec2) == 400 and receptive_field((400,), (160,)) == 400
    assert conv_frames(88_000, *wav2vec2) == 274  # the paper's 5.5 s crop
