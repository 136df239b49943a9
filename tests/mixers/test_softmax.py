import pytest
import torch
import torch.nn.functional as F

import mixers
from bench.cases import PRESETS, frames
from bench.memory import peak_memory


def _pair(hidden=96, heads=3, causal=False):
    sdpa = mixers.build("sa", hidden, heads, kernel="sdpa", causal=causal)
    naive = mixers.build("sa", hidden, heads, kernel="naive", causal=causal)
    naive.load_state_dict(sdpa.state_dict(), strict=True)
    return sdpa, naive


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("length", [1, 63, 130], ids=lambda t: f"T{t}")
def test_naive_equals_sdpa_fp32(length, causal):
    torch.manual_seed(0)
    sdpa, naive = _pair(causal=causal)
    x = torch.randn(2, length, 96)
    with torch.no_grad():
        assert (sdpa(x) - naive(x)).abs().max() <= 1e-5


def test_zero_queries_attend_uniformly():
    # Closed form: with q = 0 every score is equal, so each output is o_proj(mean of v).
    torch.manual_seed(0)
    module = mixers.build("sa", 64, 4, kernel="naive")
    torch.nn.init.zeros_(module.q_proj.weight)
    x = torch.randn(1, 17, 64)
    with torch.no_grad():
        expected = module.o_proj(module.v_proj(x).mean(dim=1, keepdim=True)).expand(1, 17, 64)
        assert torch.allclose(module(x), expected, atol=1e-6)


def test_same_parameters_for_both_kernels():
    sdpa, naive = _pair()
    assert list(sdpa.state_dict()) == ["q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight"]
    assert sdpa.state_dict().keys() == naive.state_dict().keys()


def test_matches_pytorch_multi_head_attention():
    torch.manual_seed(0)
    module = mixers.build("sa", 64, 4, kernel="sdpa")
    x = torch.randn(1, 20, 64)
    w = torch.cat([module.q_proj.weight, module.k_proj.weight, module.v_proj.weight])
    with torch.no_grad():
        expected, _ = F.multi_head_attention_forward(
            x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1), 64, 4, w, None, None, None, False, 0.0,
            module.o_proj.weight, None, need_weights=False,
        )
        assert torch.allclose(module(x), expected.transpose(0, 1), atol=1e-5)


def test_bf16_close_to_fp32():
    torch.manual_seed(0)
    sdpa, _ = _pair()
    x = torch.randn(1, 77, 96)
    with torch.no_grad():
        reference = sdpa(x)
        low = sdpa.to(torch.bfloat16)(x.to(torch.bfloat16)).float()
    assert (low - reference).abs().max() <= 5e-2  # bf16 keeps 8 bits of mantissa


@pytest.mark.parametrize("kernel", ["naive", "sdpa"])
def test_cost_model_predicts_measured_peak(kernel):
    length = frames(max(PRESETS["quick"].seconds))
    module = mixers.build("sa", 1024, 4, kernel=kernel)
    x = torch.randn(1, length, 1024)
    with torch.inference_mode():
        measured = peak_memory(lambda: module(x), "cpu").above_bytes
    predicted = mixers.cost("sa", length, 1024, 4, kernel=kernel).activation_bytes
    assert predicted == pytest.approx(measured, rel=0.25)


def test_naive_over_sdpa_memory_ratio_matches_cost_model():
    length = frames(max(PRESETS["quick"].seconds))
    measured = {}
    for kernel in ("naive", "sdpa"):
        module = mixers.build("sa", 1024, 4, kernel=kernel)
        x = torch.randn(1, length, 1024)
        with torch.inference_mode():
            measured[kernel] = peak_memory(lambda m=module, x=x: m(x), "cpu").above_bytes
    predicted = (mixers.cost("sa", length, kernel="naive").activation_bytes
                 / mixers.cost("sa", length, kernel="sdpa").activation_bytes)
    assert measured["naive"] / measured["sdpa"] == pytest.approx(predicted, rel=0.25)
    assert predicted > 5  # at 100 s the quadratic term dominates


def test_paper_scale_naive_prediction_is_about_twelve_gigabytes():
    cost = mixers.cost("sa", frames(400), 1024, 4, kernel="naive")
    assert 11e9 < cost.activation_bytes < 14e9
