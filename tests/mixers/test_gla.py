"""GLA twin: core against fla's naive_recurrent_gla (the layer against fla's own: test_fla_twins.py)."""

from __future__ import annotations

import pytest
import torch

import mixers
from mixers.gla import gla_core
from tests.mixers import parity


def _inputs(B, T, H, K, V, gate_scale=1.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(B, T, H, K, generator=gen), torch.randn(B, T, H, K, generator=gen)
    v = torch.randn(B, T, H, V, generator=gen)
    # GLA's gate: logsigmoid of a logit, / 16 (fla's default normalizer); x gate_scale for strong decays
    g = torch.nn.functional.logsigmoid(4 * torch.randn(B, T, H, K, generator=gen)) / 16 * gate_scale
    return q, k, v, g


def _ours(q, k, v, g, h0=None):
    return gla_core(q, k, v, g, h0, naive=False)


def _fla_naive(q, k, v, g, h0=None):
    return gla_core(q, k, v, g, h0, naive=True)  # fla's naive_recurrent_gla, a per-step loop


@pytest.mark.parametrize("T", [1, 63, 130], ids=lambda t: f"B2-T{t}-H2-K32-V24")
@pytest.mark.parametrize("gate_scale", [1.0, 400.0], ids=["gla-gate", "gate-x400"])
def test_core_matches_fla_naive_recurrent_gla(T, gate_scale):
    """With an initial state; x400 makes decays reach hundreds of nats in a chunk: 1e-4 of scale, fp32."""
    q, k, v, g = _inputs(2, T, 2, 32, 24, gate_scale)
    h0 = torch.randn(2, 2, 32, 24)
    parity.check_output_and_state(_ours, _fla_naive, (q, k, v, g), h0, parity.FP32)


def test_core_gradients_match_autograd_through_fla_naive():
    parity.check_gradients(_ours, _fla_naive, list(_inputs(1, 77, 2, 16, 8)), "q k v g", parity.FP32)


def test_state_dict_matches_fla_layer_and_loads_strictly():
    fla_layer, twin = parity.check_state_dict("gla")
    # fla's defaults at hidden 1024 and 4 heads: K = 128, V = 256
    assert (fla_layer.head_k_dim, fla_layer.head_v_dim) == (twin.head_k_dim, twin.head_v_dim) == (128, 256)


def test_cost_counts_state():
    cost = mixers.cost("gla", 100, 1024, 4, batch=2, kernel="torch")
    assert cost.state_bytes == 2 * 4 * 128 * 256 * 4  # fp32 state [B, H, K, V]

