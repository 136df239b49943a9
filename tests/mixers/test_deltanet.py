"""DeltaNet twin: core against fla's delta_rule_recurrence, layer against fla's own layer (interpreter);
the cases all five new twins share: test_fla_twins.py."""

from __future__ import annotations

import pytest
import torch

import mixers
from mixers.cores.chunkwise_delta import _l2norm, chunk_gated_delta_rule
from tests.mixers import parity


def _inputs(B, T, H, K, V, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(B, T, H, K, generator=gen), torch.randn(B, T, H, K, generator=gen)
    v = torch.randn(B, T, H, V, generator=gen)
    beta = torch.rand(B, T, H, generator=gen)
    return q, k, v, beta


def _fla_recurrence(q, k, v, beta, h0=None):
    from fla.ops.delta_rule.naive import delta_rule_recurrence

    # [B, H, T, *] in and out
    o, S = delta_rule_recurrence(*(x.transpose(1, 2) for x in (_l2norm(q), _l2norm(k), v, beta)), initial_state=h0)
    return o.transpose(1, 2), S


def _core(q, k, v, beta, h0=None):
    return chunk_gated_delta_rule(q, k, v, torch.zeros_like(q), beta, initial_state=h0, output_final_state=True,
                                  qk_l2norm=True)


@pytest.mark.parametrize("T", [1, 63, 130], ids=lambda t: f"B2-T{t}-H2-K32-V24")
def test_core_without_decay_matches_fla_delta_rule_recurrence(T):
    """The delta rule (zero decay) with an initial state: output and final state within 1e-4 of scale."""
    q, k, v, beta = _inputs(2, T, 2, 32, 24)
    h0 = torch.randn(2, 2, 32, 24)
    parity.check_output_and_state(_core, _fla_recurrence, (q, k, v, beta), h0, parity.FP32)


def test_core_gradients_match_autograd_through_fla_recurrence():
    parity.check_gradients(_core, _fla_recurrence, list(_inputs(1, 77, 2, 16, 8)), "q k v beta", parity.FP32)


def test_state_dict_matches_fla_layer_and_loads_strictly():
    fla_layer, twin = parity.check_state_dict("deltanet")
    assert (fla_layer.head_k_dim, fla_layer.head_v_dim) == (twin.head_k_dim, twin.head_v_dim) == (256, 256)


def _fp32_chunk_delta_rule(q, k, v, beta, scale=None, initial_state=None, output_final_state=False,
                           use_qk_l2norm_in_kernel=False, cu_seqlens=None, **_):
    """fla's chunk_delta_rule without its fp32 refusal: the same autograd function and arguments."""
    from fla.ops.delta_rule.chunk import ChunkDeltaRuleFunction

    scale = k.shape[-1] ** -0.5 if scale is None else scale
    return ChunkDeltaRuleFunction.apply(q, k, v, beta, scale, initial_state, output_final_state,
                                        use_qk_l2norm_in_kernel, cu_seqlens, None, 64)


def _norm_weight(layer):
    layer.o_norm.weight.uniform_(0.5, 1.5)  # so the norm weight's use and gradient count


@pytest.mark.interpreter
def test_fla_layer_refuses_fp32_above_64_tokens():
    """fla 0.6's chunk_delta_rule asserts bf16/fp16, so its layer fails in fp32 once T > 64 (fused_recurrent
    below): documented in mixers/deltanet.py. If fla lifts this, this test says so."""
    (fla_layer,) = parity.same_weights("deltanet", "fla")
    with pytest.raises(AssertionError, match="does not support float32"):
        fla_layer(torch.randn(1, 77, 64))


@pytest.mark.interpreter
@pytest.mark.parametrize("T", [45, 77], ids=lambda t: f"B1-T{t}-D64-H2")
def test_twin_matches_fla_layer_forward_and_gradients(T, monkeypatch):
    """fla's layer run by Triton's interpreter (fused_recurrent at T=45; at T=77 its chunk kernels, called
    in fp32 past the wrapper's dtype assertion) vs the twin: output and all gradients within 1e-4 of scale.
    The other mixers' cases: test_fla_twins.py."""
    import fla.layers.delta_net

    monkeypatch.setattr(fla.layers.delta_net, "chunk_delta_rule", _fp32_chunk_delta_rule)
    fla_layer, twin = parity.same_weights("deltanet", "fla", "torch", init=_norm_weight)
    parity.check_forward_and_gradients(fla_layer, twin, torch.randn(1, T, 64), parity.FP32, parity.FP32,
                                       parity.FP32)


def test_cost_counts_state():
    cost = mixers.cost("deltanet", 100, 1024, 4, batch=2, dtype_bytes=2, kernel="torch")
    # fp32 state [B, H, K, V] plus the convolutions' last 3 inputs of q, k, v (dtype)
    assert cost.state_bytes == 2 * 4 * 256 * 256 * 4 + 2 * 3 * 3072 * 2
