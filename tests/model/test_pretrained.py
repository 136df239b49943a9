"""Hugging Face frozen encoders, checked against the Hugging Face models themselves (tiny, random,
saved to a folder and loaded through ``from_pretrained`` as a hub name would be)."""

from pathlib import Path

import pytest
import torch

from model.build import build_model
from model.features import LayerWeights, speech_encoder, text_encoder
from model.pretrained import HFSpeech
from model.ser import SERConfig, trainable
from tests.model.tiny_hf import speech_model, text_model

KINDS = [("wavlm", "layer", True), ("wav2vec2", "group", True), ("hubert", "layer", None)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    found = {kind: speech_model(root / kind, kind, norm, extractor=extractor) for kind, norm, extractor in KINDS}
    found["bert"] = text_model(root / "bert")
    return found


def _theirs(folder: Path):
    from transformers import AutoModel

    return AutoModel.from_pretrained(folder).eval()


@pytest.mark.parametrize(("kind", "norm", "extractor"), KINDS, ids=[k[0] for k in KINDS])
def test_frames_match_the_models_own_output(folders, kind, norm, extractor):
    encoder = speech_encoder(f"hf:{folders[kind]}")
    model = _theirs(folders[kind])
    # Mask use: from the saved feature extractor, else (hubert, none saved) from the front end's norm.
    assert encoder.takes_mask == (norm == "layer")
    for samples in (400, 719, 720, 3_201, 16_000):
        with torch.no_grad():
            theirs = model(torch.randn(1, samples)).last_hidden_state.shape[1]
        # wav2vec2's closed form (DESIGN.md), the model's own formula, and its actual output agree.
        assert encoder.frames(samples) == theirs == (samples - 400) // 320 + 1
        assert theirs == int(model._get_feat_extract_output_lengths(torch.tensor(samples)))
    assert encoder.frames(88_000) == 274  # the paper's 5.5 s crop
    features, frames = encoder.encode(torch.randn(1, 250), torch.tensor([250]))  # shorter than the receptive field
    assert frames.tolist() == [1] and features.shape == (1, 1, 32)


@pytest.mark.parametrize("kind", ["wavlm", "wav2vec2"])
def test_outputs_are_the_models_hidden_states(folders, kind):
    torch.manual_seed(1)
    wave = torch.randn(1, 8_000)
    with torch.no_grad():
        out = _theirs(folders[kind])(wave, output_hidden_states=True)
    last, frames = speech_encoder(f"hf:{folders[kind]}").encode(wave, torch.tensor([8_000]))
    every, _ = speech_encoder(f"hf:{folders[kind]}", layer="all").encode(wave, torch.tensor([8_000]))
    first, _ = speech_encoder(f"hf:{folders[kind]}", layer="1").encode(wave, torch.tensor([8_000]))
    assert frames.tolist() == [24] and every.shape == (1, 24, 3, 32)
    torch.testing.assert_close(last, out.last_hidden_state, rtol=0, atol=1e-6)
    # The last entry is last_hidden_state (after the final layer norm of stable-layer-norm models),
    # whatever transformers' version puts there; the others are hidden_states as the model returns them.
    hidden = (*out.hidden_states[:-1], out.last_hidden_state)
    torch.testing.assert_close(every, torch.stack(hidden, dim=2), rtol=0, atol=1e-6)
    torch.testing.assert_close(first, out.hidden_states[1], rtol=0, atol=1e-6)
    assert torch.equal(every[:, :, -1], last)  # "last" is the last entry of "all", bit for bit


@pytest.mark.parametrize("kind", ["wavlm", "hubert", "wav2vec2"])
def test_padding_leaves_valid_frames_unchanged(folders, kind):
    torch.manual_seed(2)
    encoder = speech_encoder(f"hf:{folders[kind]}", layer="all")
    lengths = torch.tensor([9_000, 5_000, 2_000])
    waves = torch.randn(3, 9_000) * (torch.arange(9_000)[None] < lengths[:, None])
    batch, frames = encoder.encode(waves, lengths)
    for b, n in enumerate(lengths.tolist()):
        alone, _ = encoder.encode(waves[b: b + 1, :n], torch.tensor([n]))
        # Tolerance: float32 rounding of masked attention over different padded lengths.
        torch.testing.assert_close(batch[b, : frames[b]], alone[0], rtol=0, atol=1e-5)
        assert batch[b, frames[b]:].abs().sum() == 0


def test_group_norm_front_ends_do_depend_on_padding(folders):
    # Why HFSpeech runs group-norm models one utterance at a time: fed padded, as Hugging Face does
    # for them (no mask), the valid frames change.
    model = _theirs(folders["wav2vec2"])
    torch.manual_seed(3)
    wave = torch.randn(1, 5_000)
    with torch.no_grad():
        alone = model(wave).last_hidden_state
        padded = model(torch.nn.functional.pad(wave, (0, 4_000))).last_hidden_state[:, : alone.shape[1]]
    assert (alone - padded).abs().max() > 1e-2


def test_encoder_is_frozen(folders):
    encoder = speech_encoder(f"hf:{folders['wavlm']}", layer="all")
    assert not encoder.model.training
    assert not any(p.requires_grad for p in encoder.model.parameters())
    wave = torch.randn(2, 6_000)
    first, _ = encoder.encode(wave, torch.tensor([6_000, 6_000]))
    second, _ = encoder.encode(wave, torch.tensor([6_000, 6_000]))
    assert torch.equal(first, second) and not first.requires_grad  # no dropout, no SpecAugment masking
    text = text_encoder(f"hf:{folders['bert']}")
    assert not text.model.training and not any(p.requires_grad for p in text.model.parameters())


def test_layer_weights_equal_the_softmax_weighted_sum_of_hidden_states(folders):
    torch.manual_seed(4)
    wave = torch.randn(1, 6_000)
    every, _ = speech_encoder(f"hf:{folders['wavlm']}", layer="all").encode(wave, torch.tensor([6_000]))
    with torch.no_grad():
        out = _theirs(folders["wavlm"])(wave, output_hidden_states=True)
    hidden = (*out.hidden_states[:-1], out.last_hidden_state)  # as HFSpeech documents
    mix = LayerWeights(3, 32)
    with torch.no_grad():
        mix.weights.copy_(torch.tensor([0.3, -1.0, 2.0]))
    mean, std = torch.randn(3, 32), torch.rand(3, 32) + 0.5
    mix.set_normalization(mean, std)
    w = torch.exp(torch.tensor([0.3, -1.0, 2.0]))
    w = w / w.sum()
    manual = sum(w[k] * (hidden[k] - mean[k]) / std[k] for k in range(3))
    torch.testing.assert_close(mix(every), manual, rtol=1e-5, atol=1e-5)
    mix(every).sum().backward()
    assert mix.weights.grad is not None and mix.weights.grad.abs().sum() > 0  # trainable


def test_ser_model_owns_the_layer_weights():
    config = SERConfig(speech_dim=32, speech_layers=3, width=16, heads=2, depth=1, dropout=0.0)
    model = build_model(config)
    plain = build_model(SERConfig(speech_dim=32, width=16, heads=2, depth=1, dropout=0.0))
    assert trainable(model) == trainable(plain) + 3  # one weight per layer
    logits = model(torch.randn(2, 7, 3, 32), torch.tensor([7, 5]))
    assert logits.shape == (2, 8)
    with pytest.raises(ValueError, match=r"expected layered features \[B, M, 3, 32\]"):
        model(torch.randn(2, 7, 32), torch.tensor([7, 5]))


def test_text_encoder_is_berts_last_hidden_state(folders):
    encoder = text_encoder(f"hf:{folders['bert']}")
    texts = ["Wow, really happy today!", "", "okay"]
    features, lengths = encoder.encode(texts)
    tokens = encoder.tokenizer(texts)["input_ids"]
    assert lengths.tolist() == [len(t) for t in tokens] and lengths.tolist()[1] == 2  # [CLS] [SEP] of empty text
    assert encoder.tokenizer.tokenize("wow really") == ["wow", "really"]  # our vocab.txt, not [UNK]s
    model = _theirs(folders["bert"])
    for b, text in enumerate(texts):
        with torch.no_grad():
            alone = model(**encoder.tokenizer([text], return_tensors="pt")).last_hidden_state[0]
        # Tolerance: masked attention over the padded batch against the unpadded sentence.
        torch.testing.assert_close(features[b, : lengths[b]], alone, rtol=0, atol=1e-5)
        assert features[b, lengths[b]:].abs().sum() == 0


def test_bad_encoder_choices_are_one_line_errors(folders):
    with pytest.raises(ValueError, match="not a speech SSL model"):
        HFSpeech(str(folders["bert"]))
    with pytest.raises(ValueError, match=r"hidden states 0\.\.2; got layer 5"):
        speech_encoder(f"hf:{folders['wavlm']}", layer=5)
    with pytest.raises(ValueError, match="expected layer last, all or a hidden-state index"):
        speech_encoder(f"hf:{folders['wavlm']}", layer="middle")
    with pytest.raises(ValueError, match="logmel has one output"):
        speech_encoder("logmel", layer="all")
    with pytest.raises(ValueError, match="unknown text encoder 'hf:'"):
        text_encoder("hf:")


def test_loading_shows_no_progress_bars_but_keeps_warnings_and_errors(folders, capfd):
    from transformers.utils import logging as hf_logging

    from model.pretrained import HFText

    capfd.readouterr()
    HFSpeech(str(folders["wavlm"]))
    HFText(str(folders["bert"]))
    assert "Loading weights" not in capfd.readouterr().err  # transformers 5 draws one per from_pretrained
    assert hf_logging.is_progress_bar_enabled()  # the switch is put back
    from model.pretrained import quiet_loading

    with quiet_loading():  # warnings (e.g. weights left newly initialised) still reach the user
        assert hf_logging.get_logger("transformers").isEnabledFor(hf_logging.WARNING)
        assert not hf_logging.is_progress_bar_enabled()
    with pytest.raises(ValueError, match="not a speech SSL model"):
        HFSpeech(str(folders["bert"]))
