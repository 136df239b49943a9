"""HGRN2 twin: core against the paper's recurrence and fla's naive_recurrent_gla, layer against fla's own
layer (interpreter)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

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


def _gates(B, T, H, Fk, V, logit_scale=1.0, dtype=torch.float32, seed=0):
    """q, the forget gate's log g = logsigmoid(logits), its input gate k = 1 - f, and v."""
    gen = torch.Generator().manual_seed(seed)
    q = F.silu(torch.randn(B, T, H, Fk, generator=gen, dtype=dtype))
    g = F.logsigmoid(logit_scale * torch.randn(B, T, H, Fk, generator=gen, dtype=dtype))
    v = torch.randn(B, T, H, V, generator=gen, dtype=dtype)
    return q, 1 - g.exp(), v, g


def paper_recurrence(q, f, v):
    """HGRN2's state expansion as the paper writes it, fp64: per head h_t = diag(f_t) h_{t-1} +
    (1 - f_t) i_t^T ([F, V]), o_t = F^-1/2 h_t^T q_t; no logs, no chunks."""
    B, T, H, Fk = q.shape
    h = torch.zeros(B, H, Fk, v.shape[-1], dtype=torch.float64)
    out = []
    for t in range(T):
        h = f[:, t, :, :, None] * h + (1 - f[:, t, :, :, None]) * v[:, t, :, None, :]
        out.append(Fk**-0.5 * (q[:, t, :, :, None] * h).sum(-2))
    return torch.stack(out, 1)


@pytest.mark.parametrize("T", [1, 63, 130], ids=lambda t: f"B2-T{t}-H2-F16-V24")
@pytest.mark.parametrize("logit_scale", [1.0, 30.0], ids=["unit-logits", "logits-x30"])
def test_core_matches_paper_recurrence_fp64(T, logit_scale):
    """x30 logits drive some forget gates to ~0 (decays of tens of nats a step): the stable path."""
    q, k, v, g = _gates(2, T, 2, 16, 24, logit_scale, torch.float64)
    o, _ = gla_core(q, k, v, g, None, naive=False)
    torch.testing.assert_close(o, paper_recurrence(q, g.exp(), v), atol=1e-10, rtol=0)


def test_core_matches_fla_naive_recurrent_gla_fp32():
    q, k, v, g = _gates(2, 130, 2, 32, 24)
    h0 = torch.randn(2, 2, 32, 24)
    o, S = gla_core(q, k, v, g, h0, naive=False)
    o_ref, S_ref = gla_core(q, k, v, g, h0, naive=True)
    assert close(o, o_ref) and close(S, S_ref)


def test_state_dict_matches_fla_layer_and_loads_strictly():
    fla_layer, twin = assert_same_state_dict("hgrn2")
    # 4 heads at hidden 1024: expand_ratio 256
    assert fla_layer.num_heads == 4 and fla_layer.head_f_dim == twin.head_f_dim == 256


def test_auto_is_the_twin_on_cpu():
    assert mixers.build("hgrn2", 64, 2, device="cpu").kernel == "torch"


def _tweak(layer):
    layer.g_norm.weight.uniform_(0.5, 1.5)


@pytest.mark.parametrize("T", [1, 130, 300], ids=lambda t: f"B2-T{t}-D64-H2-segments128")
def test_twin_matches_reference_kernel(T):
    """Same projections, fla's naive core vs ours, over segments of 128 (state carried): 1e-4 of scale."""
    twin, reference = layers("hgrn2", "torch", "reference", tweak=_tweak)
    twin.segment = 128
    x = torch.randn(2, T, 64)
    with torch.no_grad():
        out = twin(x)
        assert out.shape == (2, T, 64)
        assert close(out, reference(x))


def test_segments_do_not_change_the_layer():
    (twin,) = layers("hgrn2", "torch", tweak=_tweak)
    x = torch.randn(1, 150, 64)
    with torch.no_grad():
        whole = twin(x)
        twin.segment = 64
        assert err(twin(x), whole)[0] <= 1e-5


def test_bf16_close_to_fp32():
    (twin,) = layers("hgrn2", "torch")
    x = torch.randn(2, 130, 64)
    with torch.no_grad():
        reference = twin(x)
        low = twin.to(torch.bfloat16)(x.bfloat16())
    assert low.dtype == torch.bfloat16
    assert close(low, reference, 3e-2)


@pytest.mark.interpreter
@pytest.mark.parametrize("T", [45, 77], ids=lambda t: f"B1-T{t}-D64-H2")
def test_twin_matches_fla_layer_forward_and_gradients(T):
    """fla's layer run by Triton's interpreter (fused_recurrent at T=45, chunk at T=77) vs the twin:
    output and all gradients within 1e-4 of their scale."""
    fla_layer, twin = layers("hgrn2", "fla", "torch", tweak=_tweak)
    assert_matches_fla(fla_layer, twin, torch.randn(1, T, 64))


def test_rejects_wrong_input_and_options():
    twin = mixers.build("hgrn2", 64, 2, kernel="torch")
    with pytest.raises(ValueError, match="expected input"):
        twin(torch.randn(1, 5, 63))
    with pytest.raises(ValueError, match="unknown HGRN2 options"):
        mixers.build("hgrn2", 64, 2, kernel="torch", expand_ratio=128)


def test_cost_counts_weights_and_state():
    assert_weight_bytes("hgrn2")
    cost = mixers.cost("hgrn2", 100, 1024, 4, batch=2, kernel="torch")
    assert cost.state_bytes == 2 * 4 * 256 * 256 * 4  # fp32 state [B, H, F, V]


def test_cost_model_predicts_measured_peak():
    """Two segments of 1024 (the second beside the whole output and the carried state): within 25%."""
    measured, predicted = measured_and_predicted("hgrn2", 1500, 256, 4)
    assert predicted == pytest.approx(measured, rel=0.25)
