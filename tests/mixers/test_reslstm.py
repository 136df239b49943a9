import pytest
import torch

import mixers
from bench.cases import frames
from bench.memory import peak_memory
from mixers.reslstm import ResidualLSTMStack


def _lstm_by_hand(lstm: torch.nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """The LSTM equations step by step, from the layer's weights (gate order i, f, g, o)."""
    B, T, _ = x.shape
    h = x.new_zeros(B, lstm.hidden_size)
    c = x.new_zeros(B, lstm.hidden_size)
    outputs = []
    for t in range(T):
        gates = x[:, t] @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + h @ lstm.weight_hh_l0.T + lstm.bias_hh_l0
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, dim=1)


def _mixer_by_hand(module, x: torch.Tensor) -> torch.Tensor:
    y = module.in_proj(x)
    for lstm in module.stack.lstms:
        y = y + _lstm_by_hand(lstm, y)
    return module.out_proj(y)


@pytest.mark.parametrize("length", [1, 63, 130], ids=lambda t: f"B2-T{t}-D48-W24-L3")
def test_equals_step_by_step_equations_fp32(length):
    torch.manual_seed(0)
    module = mixers.build("reslstm", 48, 4, width=24, num_layers=3)
    x = torch.randn(2, length, 48)
    with torch.no_grad():
        out = module(x)
        assert out.shape == (2, length, 48)
        assert (out - _mixer_by_hand(module, x)).abs().max() <= 1e-5


def test_gradients_match_step_by_step_equations():
    torch.manual_seed(0)
    module = mixers.build("reslstm", 32, 2, width=16, num_layers=2)
    x = torch.randn(2, 37, 32, requires_grad=True)
    grads = torch.autograd.grad(module(x).square().sum(), [x, *module.parameters()])
    expected = torch.autograd.grad(_mixer_by_hand(module, x).square().sum(), [x, *module.parameters()])
    for got, want in zip(grads, expected):
        assert (got - want).abs().max() <= 1e-4


def test_output_independent_of_batch_composition():
    torch.manual_seed(0)
    module = mixers.build("reslstm", 40, 4, width=20)
    x = torch.randn(3, 29, 40)
    with torch.no_grad():
        assert (module(x)[1:2] - module(x[1:2])).abs().max() <= 1e-6


def test_rejects_wrong_width_and_rank():
    module = mixers.build("reslstm", 32, 4, width=16)
    with pytest.raises(ValueError, match="expected input"):
        module(torch.randn(1, 5, 31))
    with pytest.raises(ValueError, match="expected input"):
        module(torch.randn(5, 32))


def test_paper_classifier_has_46772_parameters():
    # ResLSTM-SA-h64 as the mixer docstring assembles it: the stack with batch norm, an attention
    # vector w (64), BatchNorm1d(64), Linear(64 -> 8).
    stack = ResidualLSTMStack(46, (46, 64), batch_norm=True)
    head = [torch.nn.Parameter(torch.empty(64)), torch.nn.BatchNorm1d(64), torch.nn.Linear(64, 8)]
    count = sum(p.numel() for p in stack.parameters())
    count += head[0].numel() + sum(p.numel() for m in head[1:] for p in m.parameters())
    assert count == 46_772
    with torch.no_grad():
        # 46 -> 46 keeps its residual, 46 -> 64 has none.
        assert stack.eval()(torch.randn(2, 11, 46)).shape == (2, 11, 64)


def test_cost_counts_weights_and_state():
    module = mixers.build("reslstm", 1024, 4)
    cost = mixers.cost("reslstm", 100, 1024, 4, batch=3, dtype_bytes=2)
    assert cost.weight_bytes == 2 * sum(p.numel() for p in module.parameters())
    assert cost.state_bytes == 2 * 2 * 3 * 64 * 2  # h and c, 2 layers, batch 3, width 64, bf16


@pytest.mark.slow
@pytest.mark.parametrize("seconds", [100, 200], ids=lambda s: f"{s}s-D1024")
def test_cost_model_predicts_measured_peak(seconds):
    length = frames(seconds)
    torch.manual_seed(0)
    module = mixers.build("reslstm", 1024, 4)
    x = torch.randn(1, length, 1024)
    with torch.inference_mode():
        measured = peak_memory(lambda: module(x), "cpu").above_bytes
    predicted = mixers.cost("reslstm", length, 1024, 4).activation_bytes
    assert predicted == pytest.approx(measured, rel=0.25)


def test_cost_model_predicts_lstm_phase_peak():
    # At a narrow hidden size the LSTM's own workspace, not the projection, sets the peak.
    length = 1001
    module = mixers.build("reslstm", 16, 4, width=64)
    x = torch.randn(1, length, 16)
    with torch.inference_mode():
        measured = peak_memory(lambda: module(x), "cpu").above_bytes
    predicted = mixers.cost("reslstm", length, 16, 4).activation_bytes
    assert predicted == pytest.approx(measured, rel=0.25)
