"""Mamba2 twin: SSD core against the paper's recurrence and fla's naive_recurrent_simple_gla (the layer
against fla's own, its torch_forward SSD and its Triton gated norm under the interpreter: test_fla_twins.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mixers
from mixers.mamba2 import ssd
from tests.mixers import parity


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
    parity.assert_within(y, y_ref, parity.FP32, "output")
    actual = torch.autograd.grad(y, inputs, grad_out)
    expected = torch.autograd.grad(y_ref, inputs, grad_out)
    for name, a, e in zip("x dt A B C".split(), actual, expected):
        parity.assert_within(a, e, parity.FP32, name)


def test_state_dict_matches_fla_layer_and_loads_strictly():
    fla_layer, twin = parity.check_state_dict("mamba2")
    # 4 heads of head_dim 512 (expand 2 at hidden 1024), state size 128
    assert (fla_layer.num_heads, fla_layer.head_dim, fla_layer.ssm_state_size) == (4, 512, 128)
    assert (twin.head_dim, twin.ssm_state_size) == (512, 128)


def test_cost_counts_state():
    cost = mixers.cost("mamba2", 100, 1024, 4, batch=2, dtype_bytes=2, kernel="torch")
    # fp32 state [B, H, N, P] plus the convolution's last 3 inputs (dtype)
    assert cost.state_bytes == 2 * 4 * 128 * 512 * 4 + 2 * 3 * 2304 * 2
