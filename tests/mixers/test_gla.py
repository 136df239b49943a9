"""GLA twin: core against fla's naive_recurrent_gla, layer against fla's own layer (interpreter)."""

from __future__ import annotations

import pytest
import torch

import mixers
from mixers.gla import gla_core
from tests.mixers.twin_checks import (
    assert_matches_fla,
    assert_same_state_dict,
    assert_weight_bytes,
    close,
    err,
    layers,
    measured_and_predicted,
)


def _inputs(B, T, H, K, V, gate_scale=1.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(B, T, H, K, generator=gen), torch.randn(B, T, H, K, generator=gen)
    v = torch.randn(B, T, H, V, generator=gen)
    # GLA's gate: logsigmoid of a logit, / 16 (fla's default normalizer); x gate_scale for strong decays
    g = torch.nn.functional.logsigmoid(4 * torch.randn(B, T, H, K, generator=gen)) / 16 * gate_scale
    return q, k, v, g


@pytest.mark.parametrize("T", [1, 63, 130], ids=lambda t: f"B2-T{t}-H2-K32-V24")
@pytest.mark.parametrize("gate_scale", [1.0, 400.0], ids=["gla-gate", "gate-x400"])
def test_core_matches_fla_naive_recurrent_gla(T, gate_scale):
    """With an initial state; x400 makes decays reach hundreds of nats in a chunk: 1e-4 of scale, fp32."""
    q, k, v, g = _inputs(2, T, 2, 32, 24, gate_scale)
    h0 = torch.randn(2, 2, 32, 24)
    o, state = gla_core(q, k, v, g, h0, naive=False)
    o_ref, state_ref = gla_core(q, k, v, g, h0, naive=True)
    assert close(o, o_ref) and close(state, state_ref)


def test_core_gradients_match_autograd_through_fla_naive():
    inputs = [x.requires_grad_() for x in _inputs(1, 77, 2, 16, 8)]
    grad_out = torch.randn(1, 77, 2, 8)
    expected = torch.autograd.grad(gla_core(*inputs, None, naive=True)[0], inputs, grad_out)
    actual = torch.autograd.grad(gla_core(*inputs, None, naive=False)[0], inputs, grad_out)
    for name, a, e in zip("q k v g".split(), actual, expected):
        assert close(a, e), name


def test_state_dict_matches_fla_layer_and_loads_strictly():
    fla_layer, twin = assert_same_state_dict("gla")
    # fla's defaults at hidden 1024 and 4 heads: K = 128, V = 256
    assert (fla_layer.head_k_dim, fla_layer.head_v_dim) == (twin.head_k_dim, twin.head_v_dim) == (128, 256)


def test_auto_is_the_twin_on_cpu():
    assert mixers.build("gla", 64, 2, device="cpu").kernel == "torch"


def _tweak(layer):
    layer.g_norm_swish_gate.weight.uniform_(0.5, 1.5)  # so the norm weight's use and gradient count


@pytest.mark.parametrize("T", [1, 130, 300], ids=lambda t: f"B2-T{t}-D64-H2-segments128")
def test_twin_matches_reference_kernel(T):
    """Same projections, fla's naive core vs ours, over segments of 128 (state carried): 1e-4 of scale."""
    twin, reference = layers("gla", "torch", "reference", tweak=_tweak)
    twin.segment = 128
    x = torch.randn(2, T, 64)
    with torch.no_grad():
        out = twin(x)
        assert out.shape == (2, T, 64)
        assert close(out, reference(x))


def test_segments_do_not_change_the_layer():
    (twin,) = layers("gla", "torch", tweak=_tweak)
    x = torch.randn(1, 150, 64)
    with torch.no_grad():
        whole = twin(x)
        twin.segment = 64
        assert err(twin(x), whole)[0] <= 1e-5


def test_bf16_close_to_fp32():
    (twin,) = layers("gla", "torch")
    x = torch.randn(2, 130, 64)
    with torch.no_grad():
        reference = twin(x)
        low = twin.to(torch.bfloat16)(x.bfloat16())
    assert low.dtype == torch.bfloat16
    # bf16 rounds the projections, gate and output (~4e-3 relative each)
    assert close(low, reference, 3e-2)


@pytest.mark.interpreter
@pytest.mark.parametrize("T", [45, 77], ids=lambda t: f"B1-T{t}-D64-H2")
def test_twin_matches_fla_layer_forward_and_gradients(T):
    """fla's layer run by Triton's interpreter (fused_recurrent at T=45, chunk at T=77, its switch at 64)
    vs the twin with the same weights: output and all gradients within 1e-4 of their scale."""
    fla_layer, twin = layers("gla", "fla", "torch", tweak=_tweak)
    assert_matches_fla(fla_layer, twin, torch.randn(1, T, 64))


def test_rejects_wrong_input_and_options():
    twin = mixers.build("gla", 64, 2, kernel="torch")
    with pytest.raises(ValueError, match="expected input"):
        twin(torch.randn(1, 5, 63))
    with pytest.raises(ValueError, match="expected input"):
        twin(torch.randn(1, 0, 64))
    with pytest.raises(ValueError, match="unknown GLA options"):
        mixers.build("gla", 64, 2, kernel="torch", use_short_conv=True)


def test_cost_counts_weights_and_state():
    assert_weight_bytes("gla")
    cost = mixers.cost("gla", 100, 1024, 4, batch=2, kernel="torch")
    assert cost.state_bytes == 2 * 4 * 128 * 256 * 4  # fp32 state [B, H, K, V]


def test_cost_model_predicts_measured_peak():
    """Two segments of 1024 (the second beside the whole output and the carried state): within 25%."""
    measured, predicted = measured_and_predicted("gla", 1500, 256, 4)
    assert predicted == pytest.approx(measured, rel=0.25)
