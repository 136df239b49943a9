"""ResLSTM-SA: the paper's parameter counts, shapes, masking, and the LSTM core against its equations."""

import pytest
import torch

from model.systems import reslstm_sa
from model.systems.reslstm_sa import ResLSTMSA


def _trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize(("hidden", "count"), [(64, 46_772), (32, 27_988), (128, 108_916)],
                         ids=["h64", "h32", "h128"])
def test_trainable_parameters_match_the_papers_counts(hidden, count):
    # h64 from the paper; h32 and h128 from the authors' repository README.
    assert _trainable(reslstm_sa(hidden=hidden)) == count


def _batch(lengths, seed=0, garbage=100.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths), 46, generator=g)
    for b, n in enumerate(lengths):
        x[b, n:] = torch.randn(x.shape[1] - n, 46, generator=g) * garbage
    return x, torch.tensor(lengths)


def _model(seed=0, hidden=16, dropout=0.0):
    torch.manual_seed(seed)
    model = ResLSTMSA(hidden=hidden, classes=8, dropout=dropout)
    with torch.no_grad():  # non-trivial batch-norm state, so the tests cover it
        for norm in (model.stack.norms[0], model.norm):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_()
            norm.running_mean.normal_()
            norm.running_var.uniform_(0.5, 2.0)
    return model


def test_forward_shapes_and_bad_input():
    model = reslstm_sa().eval()
    x, n = _batch([23, 9, 1])
    assert model(x, n).shape == (3, 8)
    with pytest.raises(ValueError, match=r"features \[B, T, 46\]"):
        model(x[..., :40], n)
    with pytest.raises(ValueError, match="lengths must lie in"):
        model(x, torch.tensor([23, 0, 1]))


def test_padded_batch_equals_each_utterance_alone():
    model = _model().eval()
    lengths = [31, 12, 5, 1]
    x, n = _batch(lengths)
    batched = model(x, n)
    for b, length in enumerate(lengths):
        alone = model(x[b: b + 1, :length], torch.tensor([length]))
        torch.testing.assert_close(batched[b: b + 1], alone, rtol=1e-5, atol=1e-5)


def test_training_mode_ignores_padding_in_logits_and_running_statistics():
    lengths = [17, 9, 4]
    x, n = _batch(lengths, seed=1)
    wide = torch.randn(3, 40, 46) * 1000  # more and different garbage after the same frames
    for b, length in enumerate(lengths):
        wide[b, :length] = x[b, :length]
    a, b = _model().train(), _model().train()
    torch.testing.assert_close(a(x, n), b(wide, n), rtol=1e-5, atol=1e-5)
    for norm_a, norm_b in ((a.stack.norms[0], b.stack.norms[0]), (a.norm, b.norm)):
        torch.testing.assert_close(norm_a.running_mean, norm_b.running_mean)
        torch.testing.assert_close(norm_a.running_var, norm_b.running_var)


def test_attention_gives_padding_exactly_zero_weight():
    model = _model().eval()
    x, n = _batch([10, 3])
    mask = torch.arange(10)[None, :] < n[:, None]
    _, weights = model.attention(model.encode(x, mask), mask)
    assert torch.all(weights[1, 3:] == 0)
    torch.testing.assert_close(weights.sum(1), torch.ones(2))


def _lstm_reference(x, lstm):
    """The LSTM equations step by step (gate order i, f, g, o, as PyTorch documents them)."""
    W_ih, W_hh, b = lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0
    B, T, _ = x.shape
    h = c = x.new_zeros(B, lstm.hidden_size)
    out = []
    for t in range(T):
        i, f, g, o = (x[:, t] @ W_ih.T + h @ W_hh.T + b).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        out.append(h)
    return torch.stack(out, 1)


def test_recurrent_core_follows_the_lstm_equations_and_the_mixer_stack():
    model = _model(hidden=24).train()
    x, n = _batch([13, 13, 13], seed=2)
    mask = torch.ones(3, 13, dtype=torch.bool)
    lstm1, norm, lstm2 = model.stack.lstms[0], model.stack.norms[0], model.stack.lstms[1]
    with torch.no_grad():
        r = _lstm_reference(x, lstm1) + x
        mean, var = r.mean(dim=(0, 1)), r.var(dim=(0, 1), unbiased=False)  # training-mode batch norm
        r = (r - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias
        expected = _lstm_reference(r, lstm2)
        ours = model.encode(x, mask)
        torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)
        # Nothing padded: the masked walk is the mixer's own ResidualLSTMStack forward.
        torch.testing.assert_close(ours, model.stack(x), rtol=1e-5, atol=1e-6)


def test_initialisation_sets_only_the_forget_gate_bias():
    model = reslstm_sa(hidden=64)
    for lstm in model.stack.lstms:
        n = lstm.hidden_size
        for bias in (lstm.bias_ih_l0, lstm.bias_hh_l0):
            assert torch.all(bias[n: 2 * n] == 1) and torch.all(bias[:n] == 0) and torch.all(bias[2 * n:] == 0)
    assert torch.all(model.classifier.bias == 0)
