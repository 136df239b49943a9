"""HGRN2 twin: core against the paper's recurrence and fla's naive_recurrent_gla (the layer against fla's
own: test_fla_twins.py)."""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F

import mixers
from mixers.gla import gla_core
from tests.mixers import parity


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
    parity.check_output_and_state(partial(gla_core, naive=False), partial(gla_core, naive=True), (q, k, v, g), h0,
                                  parity.FP32)


def test_state_dict_matches_fla_layer_and_loads_strictly():
    fla_layer, twin = parity.check_state_dict("hgrn2")
    # 4 heads at hidden 1024: expand_ratio 256
    assert fla_layer.num_heads == 4 and fla_layer.head_f_dim == twin.head_f_dim == 256


def test_cost_counts_state():
    cost = mixers.cost("hgrn2", 100, 1024, 4, batch=2, kernel="torch")
    assert cost.state_bytes == 2 * 4 * 256 * 256 * 4  # fp32 state [B, H, F, V]
