"""Gated DeltaNet twin: core against fla's naive_recurrent_gated_delta_rule, layer against fla's fused
recurrent inference (interpreter); the cases all five new twins share: test_fla_twins.py."""

from __future__ import annotations

import pytest
import torch

import mixers
from mixers.cores.chunkwise_delta import _l2norm, chunk_gated_delta_rule
from tests.mixers import parity

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
    parity.check_output_and_state(_core, _fla_naive, (q, k, v, beta, g), h0, parity.FP32)


def test_core_gradients_match_autograd_through_fla_naive():
    parity.check_gradients(_core, _fla_naive, list(_inputs(1, 77, 2, 16, 8)), "q k v beta g", parity.FP32)


def test_state_dict_matches_fla_layer_and_loads_strictly():
    fla_layer, twin = parity.check_state_dict("gated_deltanet")
    # fla's defaults: head_dim 256 and expand_v 2 whatever the hidden size
    assert (fla_layer.head_k_dim, fla_layer.head_v_dim) == (twin.head_k_dim, twin.head_v_dim) == (256, 512)


@pytest.mark.interpreter
def test_twin_matches_fla_fused_recurrent_inference():
    """In eval mode under no_grad at T <= 64 fla switches to fused_recurrent: 1e-4 of scale. (Its chunk
    kernels, forward and gradients: test_fla_twins.py.)"""

    def norm_weight(layer):
        layer.o_norm.weight.uniform_(0.5, 1.5)

    fla_layer, twin = parity.same_weights("gated_deltanet", "fla", "torch", init=norm_weight, **SMALL)
    parity.check_inference(fla_layer.eval(), twin, torch.randn(1, 45, 64), parity.FP32)


def test_cost_counts_state():
    cost = mixers.cost("gated_deltanet", 100, 1024, 4, batch=2, dtype_bytes=2, kernel="torch")
    # fp32 state [B, H, K, V] plus the convolutions' last 3 inputs of q, k, v (dtype)
    assert cost.state_bytes == 2 * 4 * 256 * 512 * 4 + 2 * 3 * 4096 * 2
