"""Mamba2 twin: SSD core against the paper's recurrence and fla's naive_recurrent_simple_gla, layer against
fla's own layer (its torch_forward SSD and its Triton gated norm, under the interpreter)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mixers
from mixers.mamba2 import ssd
from tests.mixers.twin_checks import (
    assert_matches_fla,
    assert_same_state_dict,
    assert_weight_bytes,
    close,
    err,
    layers,
    measured_and_predicted,
)


def _inputs(B, T, H, P, N, dt_scale=1.0, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, H, P, generator=gen, dtype=dtype)
    dt = dt_scale * F.softplus(torch.randn(B, T, H, generator=gen, dtype=dtype))
    A = -torch.empty(H, dtype=dtype).uniform_(1, 16, generator=gen)
    Bm, Cm = torch.randn(B, T, N, generator=gen, dtype=dtype), torch.randn(B, T, N, generator=gen, dtype=dtype)
    return x, dt, A, Bm, Cm


def paper_recurrence(x, dt, A, Bm, Cm, h0):
    """The selective SSM written step by step, fp64: h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t^T ([N, P]
    per head), y_t = h_t^T C_t."""
    h, out = h0.double(), []
    for t in range(x.shape[1]):
        decay = (dt[:, t] * A).exp()[..., None, None]  # [B, H, 1, 1]
        h = decay * h + dt[:, t, :, None, None] * Bm[:, t, None, :, None] * x[:, t, :, None, :]
        out.append(torch.einsum("bhnp,bn->bhp", h, Cm[:, t]))
    return torch.stack(out, 1), h


@pytest.mark.parametrize("T", [1, 63, 100], ids=lambda t: f"B2-T{t}-H2-P16-N16")
@pytest.mark.parametrize("dt_scale", [0.1, 3.0], ids=["dt-small", "dt-x3"])
def test_ssd_matches_paper_recurrence_fp64(T, dt_scale):
    """dt x3 with A up to 16 decays tens of nats a step. With an initial state."""
    x, dt, A, Bm, Cm = _inputs(2, T, 2, 16, 16, dt_scale, torch.float64)
    h0 = torch.randn(2, 2, 16, 16, dtype=torch.float64)
    y, h = ssd(x, dt, A, Bm, Cm, h0)
    y_ref, h_ref = paper_recurrence(x, dt, A, Bm, Cm, h0)
    torch.testing.assert_close(y, y_ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(h, h_ref, atol=1e-10, rtol=0)


def test_ssd_matches_fla_naive_recurrent_simple_gla_fp32_with_gradients():
    """dt ~ 0.1 (fla initialises dt in [1e-3, 0.1]): 1e-4 of scale. At dt ~ 0.7 (~8 nats a step) A's
    gradient drifts to ~1e-4 relative in fp32: the within-chunk cumulative decays reach hundreds."""
    inputs = [t.requires_grad_() for t in _inputs(1, 77, 2, 16, 8, dt_scale=0.1)]
    grad_out = torch.randn(1, 77, 2, 16, generator=torch.Generator().manual_seed(1))
    y, _ = ssd(*inputs, None)
    y_ref, _ = ssd(*inputs, None, naive=True)
    assert close(y, y_ref)
    actual = torch.autograd.grad(y, inputs, grad_out)
    expected = torch.autograd.grad(y_ref, inputs, grad_out)
    for name, a, e in zip("x dt A B C".split(), actual, expected):
        assert close(a, e), name


def test_state_dict_matches_fla_layer_and_loads_strictly():
    fla_layer, twin = assert_same_state_dict("mamba2")
    # 4 heads of head_dim 512 (expand 2 at hidden 1024), state size 128
    assert (fla_layer.num_heads, fla_layer.head_dim, fla_layer.ssm_state_size) == (4, 512, 128)
    assert (twin.head_dim, twin.ssm_state_size) == (512, 128)


def test_auto_is_the_twin_on_cpu():
    assert mixers.build("mamba2", 64, 2, device="cpu").kernel == "torch"


def _tweak(layer):
    layer.norm.weight.uniform_(0.5, 1.5)
    layer.D.uniform_(0.5, 1.5)


@pytest.mark.parametrize("T", [1, 200], ids=lambda t: f"B2-T{t}-D64-H2-segments128")
def test_twin_matches_reference_kernel(T):
    """Same projections, fla's per-step loop vs our chunked core, in segments of 128 (the state and the
    convolution's context carried across): 1e-4 of scale."""
    twin, reference = layers("mamba2", "torch", "reference", tweak=_tweak)
    twin.segment = 128
    x = torch.randn(2, T, 64)
    with torch.no_grad():
        out = twin(x)
        assert out.shape == (2, T, 64)
        assert close(out, reference(x))


def test_segments_do_not_change_the_layer():
    (twin,) = layers("mamba2", "torch", tweak=_tweak)
    x = torch.randn(1, 150, 64)
    with torch.no_grad():
        whole = twin(x)
        twin.segment = 64
        assert err(twin(x), whole)[0] <= 1e-5


def test_bf16_close_to_fp32():
    (twin,) = layers("mamba2", "torch")
    x = torch.randn(2, 130, 64)
    with torch.no_grad():
        reference = twin(x)
        low = twin.to(torch.bfloat16)(x.bfloat16())
    assert low.dtype == torch.bfloat16
    assert close(low, reference, 3e-2)


@pytest.mark.interpreter
@pytest.mark.parametrize("T", [45, 77], ids=lambda t: f"B1-T{t}-D64-H2")
def test_twin_matches_fla_layer_forward_and_gradients(T):
    """fla's layer on CPU (its torch_forward SSD in chunks of 256, its Triton gated norm under the
    interpreter) vs the twin: output and all gradients within 1e-4 of their scale."""
    fla_layer, twin = layers("mamba2", "fla", "torch", tweak=_tweak)
    assert_matches_fla(fla_layer, twin, torch.randn(1, T, 64))


def test_rejects_wrong_input_and_options():
    twin = mixers.build("mamba2", 64, 2, kernel="torch")
    with pytest.raises(ValueError, match="expected input"):
        twin(torch.randn(1, 5, 63))
    with pytest.raises(ValueError, match="unknown Mamba2 options"):
        mixers.build("mamba2", 64, 2, kernel="torch", n_groups=2)


def test_cost_counts_weights_and_state():
    assert_weight_bytes("mamba2")
    cost = mixers.cost("mamba2", 100, 1024, 4, batch=2, dtype_bytes=2, kernel="torch")
    # fp32 state [B, H, N, P] plus the convolution's last 3 inputs (dtype)
    assert cost.state_bytes == 2 * 4 * 128 * 512 * 4 + 2 * 3 * 2304 * 2


def test_cost_model_predicts_measured_peak():
    """Two segments of 1024 (the second beside the whole output and the carried state): within 25%."""
    measured, predicted = measured_and_predicted("mamba2", 1500, 256, 4)
    assert predicted == pytest.approx(measured, rel=0.25)
