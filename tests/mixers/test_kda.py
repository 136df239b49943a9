import pytest
import torch

import mixers
from bench.cases import frames
from mixers import kda
from mixers.cores import chunkwise_delta as delta_chunk
from mixers.cores.chunkwise_delta import _l2norm, chunk_gated_delta_rule
from tests.mixers import parity

# Per-step log decays g ~ -U(0, strength): "weak" keeps every chunk on the single-reference path,
# "moderate" (several nats a step: over 120 on average in a 32-token chunk, ~64 in its halves)
# needs the halving path for whole chunks only, "strong" wipes the state within a token or two and
# halves down to single tokens.
DECAYS = {"weak": 0.05, "moderate": 8.0, "strong": 100.0}


def _inputs(B, T, H, K, V, strength=1.0, seed=0):
    torch.manual_seed(seed)
    q, k = torch.randn(B, T, H, K), torch.randn(B, T, H, K)  # [B, T, H, K]
    v = torch.randn(B, T, H, V)  # [B, T, H, V]
    g = -strength * torch.rand(B, T, H, K)  # [B, T, H, K], log decay
    beta = torch.rand(B, T, H)  # [B, T, H]
    return q, k, v, g, beta


def _err(actual, expected):
    """Max abs error and the reference's scale (KDA outputs can be far below 1)."""
    return (actual.float() - expected.float()).abs().max().item(), expected.float().abs().max().item()


def _naive(q, k, v, g, beta, h0=None):
    from fla.ops.kda.naive import naive_recurrent_kda

    return naive_recurrent_kda(_l2norm(q), _l2norm(k), v, g, beta, initial_state=h0, output_final_state=True)


@pytest.mark.parametrize("T", [1, 63, 130], ids=lambda t: f"B2-T{t}-H3-K32-V24")
@pytest.mark.parametrize("decay", list(DECAYS), ids=lambda d: f"g-{d}")
def test_core_matches_fla_naive_recurrent_kda(T, decay):
    """Our chunked core vs fla's naive_recurrent_kda (one step at a time), with an initial state:
    output and final state within 1e-4 abs and 1e-4 of the output's scale, fp32."""
    q, k, v, g, beta = _inputs(2, T, 3, 32, 24, DECAYS[decay])
    h0 = torch.randn(2, 3, 32, 24)
    expected, expected_state = _naive(q, k, v, g, beta, h0)
    out, state = chunk_gated_delta_rule(q, k, v, g, beta, initial_state=h0, output_final_state=True,
                                        qk_l2norm=True)
    err, scale = _err(out, expected)
    assert err <= 1e-4 * min(1.0, scale)
    err, scale = _err(state, expected_state)
    assert err <= 1e-4 * max(1.0, scale)


@pytest.mark.parametrize("decay, halving", [("weak", False), ("moderate", True), ("strong", True)],
                         ids=lambda x: f"{x}" if isinstance(x, str) else ("halving" if x else "one-reference"))
def test_decay_strength_selects_the_stable_path(monkeypatch, decay, halving):
    """The cases above run both ways of building the score matrices: pin which one each takes."""
    calls = []
    real = delta_chunk._decayed_tril
    monkeypatch.setattr(delta_chunk, "_decayed_tril", lambda *a: calls.append(1) or real(*a))
    q, k, v, g, beta = _inputs(1, 130, 3, 32, 24, DECAYS[decay])
    out, _ = chunk_gated_delta_rule(q, k, v, g, beta, qk_l2norm=True)
    assert bool(calls) == halving
    assert torch.isfinite(out).all()


def test_mixed_extreme_decays_stay_finite_and_exact():
    """Channels that never decay beside channels decaying 500 nats a step, in one chunk: 1e-4 of scale."""
    q, k, v, g, beta = _inputs(1, 150, 2, 16, 8)
    g = torch.where(torch.arange(16) % 2 == 0, torch.zeros(()), -500.0 * torch.rand(1, 150, 2, 16))
    expected, _ = _naive(q, k, v, g, beta)
    out, _ = chunk_gated_delta_rule(q, k, v, g, beta, qk_l2norm=True)
    err, scale = _err(out, expected)
    assert err <= 1e-4 * scale


def test_core_matches_fla_naive_chunk_kda():
    """fla's naive chunked form (T a multiple of 64; its unguarded exponents need mild decays): 1e-4 abs."""
    from fla.ops.kda.naive import naive_chunk_kda

    q, k, v, g, beta = _inputs(2, 128, 2, 32, 16, 0.5)
    h0 = torch.randn(2, 2, 32, 16)
    expected, expected_state = naive_chunk_kda(_l2norm(q), _l2norm(k), v, g, beta, initial_state=h0,
                                               output_final_state=True)
    out, state = chunk_gated_delta_rule(q, k, v, g, beta, initial_state=h0, output_final_state=True,
                                        qk_l2norm=True)
    assert _err(out, expected)[0] <= 1e-4
    assert _err(state, expected_state)[0] <= 1e-4


def test_chunked_equals_step_by_step_recurrence():
    """S_t = (I - b k k^T) diag(e^g) S_{t-1} + b k v^T, o_t = K^-1/2 S_t^T q_t written out here,
    without normalising q, k (qk_l2norm=False) and with a custom scale: 1e-4 of scale."""
    B, T, H, K, V = 2, 70, 2, 16, 12
    q, k, v, g, beta = _inputs(B, T, H, K, V, 1.0)
    k = k * 0.25  # keep I - beta k k^T a contraction without normalising k
    state = torch.zeros(B, H, K, V)
    steps = []
    for t in range(T):
        kt, bt = k[:, t], beta[:, t, :, None]  # [B, H, K], [B, H, 1]
        state = g[:, t].exp().unsqueeze(-1) * state
        state = state + (bt * kt).unsqueeze(-1) * (v[:, t] - torch.einsum("bhk,bhkv->bhv", kt, state)).unsqueeze(-2)
        steps.append(0.3 * torch.einsum("bhk,bhkv->bhv", q[:, t], state))
    expected = torch.stack(steps, dim=1)
    out, _ = chunk_gated_delta_rule(q, k, v, g, beta, scale=0.3)
    err, scale = _err(out, expected)
    assert err <= 1e-4 * scale


@pytest.mark.parametrize("split", [1, 50, 64, 100], ids=lambda s: f"T130-split{s}")
def test_segments_with_carried_state_equal_one_pass(split):
    q, k, v, g, beta = _inputs(2, 130, 2, 16, 8, 2.0)
    whole, whole_state = chunk_gated_delta_rule(q, k, v, g, beta, output_final_state=True, qk_l2norm=True)
    first, state = chunk_gated_delta_rule(*(x[:, :split] for x in (q, k, v, g, beta)), output_final_state=True,
                                          qk_l2norm=True)
    second, last_state = chunk_gated_delta_rule(*(x[:, split:] for x in (q, k, v, g, beta)), initial_state=state,
                                                output_final_state=True, qk_l2norm=True)
    assert _err(torch.cat([first, second], 1), whole)[0] <= 1e-5
    assert _err(last_state, whole_state)[0] <= 1e-5


@pytest.mark.parametrize("decay", list(DECAYS), ids=lambda d: f"g-{d}")
def test_groups_and_in_place_inference_do_not_change_the_result(decay):
    """Several groups (and a padded last chunk) vs one; the in-place loop under no_grad (both
    references: the halfway one, and the chunk's ends for strong decays) vs autograd's: 1e-5 of scale."""
    q, k, v, g, beta = _inputs(1, 300, 2, 16, 8, DECAYS[decay])
    h0 = torch.randn(1, 2, 16, 8)
    h0_before = h0.clone()
    one_group, one_state = chunk_gated_delta_rule(q, k, v, g, beta, initial_state=h0, output_final_state=True,
                                                  qk_l2norm=True)
    with torch.no_grad():
        many_groups, many_state = chunk_gated_delta_rule(q, k, v, g, beta, initial_state=h0, output_final_state=True,
                                                         qk_l2norm=True, group_tokens=64)
    assert _err(many_groups, one_group)[0] <= 1e-5 * max(1.0, one_group.abs().max().item())
    assert _err(many_state, one_state)[0] <= 1e-5 * max(1.0, one_state.abs().max().item())
    assert torch.equal(h0, h0_before)  # the caller's state is not updated in place


@pytest.mark.parametrize("decay", list(DECAYS), ids=lambda d: f"B1-T77-H2-K16-V8-g-{d}")
def test_core_gradients_match_autograd_through_fla_naive(decay):
    """Gradients of q, k, v, g, beta through our core vs through naive_recurrent_kda: 1e-4 of scale."""
    inputs = [x.requires_grad_() for x in _inputs(1, 77, 2, 16, 8, DECAYS[decay])]
    grad_out = torch.randn(1, 77, 2, 8)
    expected = torch.autograd.grad(_naive(*inputs)[0], inputs, grad_out)
    out, _ = chunk_gated_delta_rule(*inputs, qk_l2norm=True)
    actual = torch.autograd.grad(out, inputs, grad_out)
    for name, a, e in zip("q k v g beta".split(), actual, expected):
        err, scale = _err(a, e)
        assert err <= 1e-4 * max(1.0, scale), name


def test_core_bf16_close_to_fp32():
    """bf16 inputs, fp32 arithmetic inside, bf16 output (8-bit mantissa: ~4e-3 relative rounding)."""
    q, k, v, g, beta = _inputs(2, 130, 2, 32, 16, 1.0)
    expected, _ = chunk_gated_delta_rule(q, k, v, g, beta, qk_l2norm=True)
    low, _ = chunk_gated_delta_rule(*(x.bfloat16() for x in (q, k, v, g, beta)), qk_l2norm=True)
    assert low.dtype == torch.bfloat16
    err, scale = _err(low, expected)
    assert err <= 2e-2 * scale


def test_core_rejects_mismatched_shapes():
    q, k, v, g, beta = _inputs(1, 10, 2, 16, 8)
    with pytest.raises(ValueError, match="expected q, k, g of one shape"):
        chunk_gated_delta_rule(q, k[..., :8], v, g, beta)
    with pytest.raises(ValueError, match="beta"):
        chunk_gated_delta_rule(q, k, v, g, beta[..., :1])
    with pytest.raises(ValueError, match=f"multiple of {delta_chunk.CHUNK}"):
        chunk_gated_delta_rule(q, k, v, g, beta, group_tokens=delta_chunk.CHUNK + 1)


def test_state_dict_matches_fla_layer_and_loads_strictly():
    parity.check_state_dict("kda")
    # the paper's configuration: head_dim 128 whatever the hidden size, so key and value widths 512
    fla_layer = mixers.build("kda", 1024, 4, kernel="fla")
    assert fla_layer.head_dim == 128 and fla_layer.key_dim == 512 and fla_layer.num_heads == 4


def test_auto_is_the_twin_on_cpu():
    if torch.cuda.is_available():
        pytest.skip("auto picks fla on a CUDA machine")
    assert mixers.build("kda", 64, 2).kernel == "torch"


def _norm_and_gate(layer):
    # A non-trivial norm weight and gate bias, so their use and gradients are exercised.
    layer.o_norm.weight.uniform_(0.5, 1.5)
    layer.g_proj[1].bias.uniform_(-1, 1)


@pytest.mark.parametrize("T", [1, 130, 300], ids=lambda t: f"B2-T{t}-D64-H2-segments128")
def test_twin_matches_reference_kernel(T, monkeypatch):
    """Same projections, fla's naive core vs ours, in segments of 128 tokens (T=130 and 300 cross
    segment borders, where the state and the convolutions' context carry over): 1e-4 abs and of scale."""
    monkeypatch.setattr(kda, "SEGMENT", 128)
    parity.check_reference_kernel("kda", T, parity.of_scale(1e-4, cap=1.0), hidden=64, heads=2,
                                  init=_norm_and_gate)


def test_segment_borders_do_not_change_the_layer(monkeypatch):
    """Segments of 64 tokens (state and convolution context carried) vs one segment: 1e-5 abs."""
    torch.manual_seed(0)
    twin = mixers.build("kda", 64, 2, kernel="torch")
    with torch.no_grad():
        _norm_and_gate(twin)
    x = torch.randn(1, 150, 64)
    with torch.no_grad():
        whole = twin(x)
        monkeypatch.setattr(kda, "SEGMENT", 64)
        assert _err(twin(x), whole)[0] <= 1e-5


def test_layer_bf16_close_to_fp32():
    torch.manual_seed(0)
    twin = mixers.build("kda", 64, 2, kernel="torch")
    with torch.no_grad():
        _norm_and_gate(twin)
    x = torch.randn(2, 130, 64)
    with torch.no_grad():
        reference = twin(x)
        low = twin.to(torch.bfloat16)(x.bfloat16())
    assert low.dtype == torch.bfloat16
    # bf16 rounds the projections, convolutions and output (~4e-3 relative each).
    err, scale = _err(low, reference)
    assert err <= 3e-2 * scale


@pytest.mark.interpreter
@pytest.mark.slow
@pytest.mark.parametrize("T", [45, 77], ids=lambda t: f"B1-T{t}-D64-H2")
def test_twin_matches_fla_layer_forward_and_gradients(T):
    """fla's layer (chunk kernels, as under autograd) run by Triton's interpreter vs the twin with the
    same weights: output within 1e-4 of min(1, scale), input and every parameter gradient within
    1e-4 of max(1, scale). (Interpreted KDA is slow, ~1 min a case on 2 busy cores: one sequence per case.)"""
    grads = parity.of_scale(1e-4, floor=1.0)
    parity.check_forward_and_gradients(*parity.fla_pair("kda", init=_norm_and_gate), torch.randn(1, T, 64),
                                       parity.of_scale(1e-4, cap=1.0), grads, grads)


@pytest.mark.interpreter
@pytest.mark.slow
def test_twin_matches_fla_fused_recurrent_inference():
    """In eval mode under no_grad at T <= 64 fla switches to its fused_recurrent kernel: 1e-4 of scale."""
    fla_layer, twin = parity.fla_pair("kda", init=_norm_and_gate)
    parity.check_inference(fla_layer.eval(), twin, torch.randn(1, 45, 64), parity.of_scale(1e-4, cap=1.0))


def test_rejects_wrong_input_and_options():
    twin = mixers.build("kda", 64, 2, kernel="torch")
    with pytest.raises(ValueError, match="expected input"):
        twin(torch.randn(1, 5, 63))
    with pytest.raises(ValueError, match="expected input"):
        twin(torch.randn(1, 0, 64))
    with pytest.raises(ValueError, match="unknown KDA options"):
        mixers.build("kda", 64, 2, kernel="torch", num_v_heads=4)


def test_cost_counts_weights_and_state():
    twin = mixers.build("kda", 1024, 4, kernel="torch")
    cost = mixers.cost("kda", 100, 1024, 4, batch=2, dtype_bytes=2, kernel="torch")
    assert cost.weight_bytes == 2 * sum(p.numel() for p in twin.parameters())
    # fp32 state [B, H, K, V] plus the convolutions' last 3 inputs of q, k, v (dtype)
    assert cost.state_bytes == 2 * 4 * 128 * 128 * 4 + 2 * 3 * 1536 * 2


@pytest.mark.slow
@pytest.mark.parametrize("seconds", [100, 400], ids=lambda s: f"{s}s-D1024-H4")
def test_cost_model_predicts_measured_peak(seconds):
    parity.check_cost_model("kda", frames(seconds))
