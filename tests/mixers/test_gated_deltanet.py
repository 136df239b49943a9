"""Gated DeltaNet twin: core against fla's naive_recurrent_gated_delta_rule, layer against fla's own
layer (interpreter)."""

from __future__ import annotations

import pytest
import torch

import mixers
from mixers.delta_chunk import _l2norm, chunk_gated_delta_rule
from tests.mixers.twin_checks import (
    assert_matches_fla,
    assert_same_state_dict,
    assert_weight_bytes,
    close,
    err,
    layers,
    measured_and_predicted,
)

SMALL = dict(head_dim=32)
"""Interpreter-sized heads (fla's default head_dim 256 makes the interpreted kernels ~10x slower)."""


def _inputs(B, T, H, K, V, strength=1.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(B, T, H, K, generator=gen), torch.randn(B, T, H, K, generator=gen)
    v = torch.randn(B, T, H, V, generator=gen)
    beta = torch.rand(B, T, H, generator=gen)
    g = -strength * torch.rand(B, T, H, generator=gen)  # [B, T, H]: one log decay per head and step
    return q, k, v, beta, g


def _fla_naive(q, k, v, beta, g, h0=None):
    from fla.ops.gated_delta_rule.naive import naive_recurrent_gated_delta_rule

    return naive_recurrent_gated_delta_rule(_l2norm(q), _l2norm(k), v, beta, g, initial_state=h0,
                                            output_final_state=True)


def _core(q, k, v, beta, g, h0=None):
    # the twin's use of the per-channel core: the head's decay on every key channel
    return chunk_gated_delta_rule(q, k, v, g.unsqueeze(-1).expand(q.shape), beta, initial_state=h0,
                                  output_final_state=True, qk_l2norm=True)


@pytest.mark.parametrize("T", [1, 63, 130], ids=lambda t: f"B2-T{t}-H2-K32-V48")
@pytest.mark.parametrize("strength", [0.1, 3.0], ids=["g-weak", "g-strong"])
def test_core_with_head_decay_matches_fla_naive(T, strength):
    """3 nats a step makes whole chunks decay by ~100: the halving path. 1e-4 of scale, fp32."""
    q, k, v, beta, g = _inputs(2, T, 2, 32, 48, strength)
    h0 = torch.randn(2, 2, 32, 48)
    o, S = _core(q, k, v, beta, g, h0)
    o_ref, S_ref = _fla_naive(q, k, v, beta, g, h0)
    assert close(o, o_ref) and close(S, S_ref)


def test_core_gradients_match_autograd_through_fla_naive():
    inputs = [x.requires_grad_() for x in _inputs(1, 77, 2, 16, 8)]
    grad_out = torch.randn(1, 77, 2, 8)
    expected = torch.autograd.grad(_fla_naive(*inputs)[0], inputs, grad_out)
    actual = torch.autograd.grad(_core(*inputs)[0], inputs, grad_out)
    for name, a, e in zip("q k v beta g".split(), actual, expected):
        assert close(a, e), name


def test_state_dict_matches_fla_layer_and_loads_strictly():
    fla_layer, twin = assert_same_state_dict("gated_deltanet")
    # fla's defaults: head_dim 256 and expand_v 2 whatever the hidden size
    assert (fla_layer.head_k_dim, fla_layer.head_v_dim) == (twin.head_k_dim, twin.head_v_dim) == (256, 512)


def test_auto_is_the_twin_on_cpu():
    assert mixers.build("gated_deltanet", 64, 2, device="cpu").kernel == "torch"


def _tweak(layer):
    layer.o_norm.weight.uniform_(0.5, 1.5)


@pytest.mark.parametrize("T", [1, 130, 300], ids=lambda t: f"B2-T{t}-D64-H2-K32-segments128")
def test_twin_matches_reference_kernel(T):
    """Same projections, fla's per-token loop vs our chunked core, in segments of 128: 1e-4 of scale."""
    twin, reference = layers("gated_deltanet", "torch", "reference", tweak=_tweak, **SMALL)
    twin.segment = 128
    x = torch.randn(2, T, 64)
    with torch.no_grad():
        out = twin(x)
        assert out.shape == (2, T, 64)
        assert close(out, reference(x))


def test_segments_do_not_change_the_layer():
    (twin,) = layers("gated_deltanet", "torch", tweak=_tweak, **SMALL)
    x = torch.randn(1, 150, 64)
    with torch.no_grad():
        whole = twin(x)
        twin.segment = 64
        assert err(twin(x), whole)[0] <= 1e-5


def test_bf16_close_to_fp32():
    (twin,) = layers("gated_deltanet", "torch", **SMALL)
    x = torch.randn(2, 130, 64)
    with torch.no_grad():
        reference = twin(x)
        low = twin.to(torch.bfloat16)(x.bfloat16())
    assert low.dtype == torch.bfloat16
    assert close(low, reference, 3e-2)


@pytest.mark.interpreter
def test_twin_matches_fla_layer_forward_and_gradients():
    """fla's layer (chunk kernels whenever autograd is on) run by Triton's interpreter vs the twin, T=77:
    output and all gradients (A_log and dt_bias included) within 1e-4 of their scale."""
    fla_layer, twin = layers("gated_deltanet", "fla", "torch", tweak=_tweak, **SMALL)
    assert_matches_fla(fla_layer, twin, torch.randn(1, 77, 64))


@pytest.mark.interpreter
def test_twin_matches_fla_fused_recurrent_inference():
    """In eval mode under no_grad at T <= 64 fla switches to fused_recurrent: 1e-4 of scale."""
    fla_layer, twin = layers("gated_deltanet", "fla", "torch", tweak=_tweak, **SMALL)
    fla_layer.eval()
    x = torch.randn(1, 45, 64)
    with torch.no_grad():
        assert close(twin(x), fla_layer(x))


def test_rejects_wrong_input_and_options():
    twin = mixers.build("gated_deltanet", 64, 2, kernel="torch", **SMALL)
    with pytest.raises(ValueError, match="expected input"):
        twin(torch.randn(1, 5, 63))
    with pytest.raises(ValueError, match="unknown Gated DeltaNet options"):
        mixers.build("gated_deltanet", 64, 2, kernel="torch", num_v_heads=4)
    with pytest.raises(ValueError, match="must be an integer"):
        mixers.build("gated_deltanet", 64, 2, kernel="torch", head_dim=3, expand_v=0.5)


def test_cost_counts_weights_and_state():
    assert_weight_bytes("gated_deltanet")
    cost = mixers.cost("gated_deltanet", 100, 1024, 4, batch=2, dtype_bytes=2, kernel="torch")
    # fp32 state [B, H, K, V] plus the convolutions' last 3 inputs of q, k, v (dtype)
    assert cost.state_bytes == 2 * 4 * 256 * 512 * 4 + 2 * 3 * 4096 * 2


def test_cost_model_predicts_measured_peak():
    """One segment, heads of 64 keys and 128 values: within 25%."""
    measured, predicted = measured_and_predicted("gated_deltanet", 1000, 256, 4, head_dim=64)
    assert predicted == pytest.approx(measured, rel=0.25)
