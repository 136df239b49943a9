import pytest
import torch

import mixers
from bench.cases import frames
from bench.memory import peak_memory
from mixers.retnet import log_decays, retention, retention_with_state
from tests.mixers import parity


def _qkv(B, T, H, K, V):
    torch.manual_seed(0)
    # [B, T, H, K], [B, T, H, K], [B, T, H, V]
    return torch.randn(B, T, H, K), torch.randn(B, T, H, K), torch.randn(B, T, H, V)


@pytest.mark.parametrize("T", [1, 63, 130], ids=lambda t: f"B2-T{t}-H3-K32-V48")
def test_core_matches_fla_naive_retention(T):
    """Our chunkwise core vs fla's naive_retention (materialized decay mask): 1e-4 abs, fp32."""
    from fla.ops.retention.naive import naive_retention

    q, k, v = _qkv(2, T, 3, 32, 48)
    expected = naive_retention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)
    assert (retention(q, k, v) - expected).abs().max() <= 1e-4


@pytest.mark.parametrize("chunk_size", [16, 64], ids=lambda c: f"C{c}")
def test_chunked_equals_step_by_step_recurrence(chunk_size):
    """S_t = gamma_h S_{t-1} + k_t v_t^T, o_t = K^-1/2 S_t^T q_t, one step at a time from a random
    initial state: output and final state within 1e-4 abs."""
    B, T, H, K, V = 2, 130, 2, 16, 24
    q, k, v = _qkv(B, T, H, K, V)
    initial = torch.randn(B, H, K, V)
    gamma = log_decays(H).exp().view(1, H, 1, 1)
    state = initial
    steps = []
    for t in range(T):
        state = gamma * state + k[:, t, :, :, None] * v[:, t, :, None, :]
        steps.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * K**-0.5, state))
    expected = torch.stack(steps, dim=1)
    o, final = retention_with_state(q, k, v, initial.clone(), chunk_size=chunk_size)
    assert (o - expected).abs().max() <= 1e-4
    assert (final - state).abs().max() <= 1e-4


@pytest.mark.parametrize("segment", [64, 128, 37, 100], ids=lambda s: f"B2-T300-D64-H2-segment{s}")
def test_segments_equal_one_pass(segment):
    """Segments with the state carried and rotary offset by each start, against one pass (fp32,
    1e-5 abs at unit-scale outputs): borders between chunks of 64 (64, 128) and inside them (37, 100)."""
    torch.manual_seed(0)
    twin = mixers.build("retnet", 64, 2, kernel="torch", segment=1024)
    x = torch.randn(2, 300, 64)
    with torch.no_grad():
        whole = twin(x)
        twin.segment = segment
        pieces = twin(x)
    assert whole.abs().max() >= 0.5  # a scale at which 1e-5 is a real bound
    assert (pieces - whole).abs().max() <= 1e-5


def test_segment_gradients_equal_one_pass():
    """Backward through segments of 37 (the outputs written into one tensor) against one pass: the
    input's and every parameter's gradient within 1e-5 of their scale (fp32)."""
    torch.manual_seed(0)
    twin = mixers.build("retnet", 64, 2, kernel="torch")
    x, dy = torch.randn(1, 150, 64), torch.randn(1, 150, 64)
    grads = []
    for segment in (1024, 37):
        twin.segment, xs = segment, x.clone().requires_grad_()
        twin.zero_grad()
        twin(xs).backward(dy)
        grads.append([xs.grad] + [p.grad.clone() for p in twin.parameters()])
    for whole, pieces in zip(*grads):
        assert (pieces - whole).abs().max() <= 1e-5 * whole.abs().max()


def test_decays_are_retnets():
    assert torch.allclose(log_decays(4).exp(), torch.tensor([1 - 2.0**-5, 1 - 2.0**-6, 1 - 2.0**-7, 1 - 2.0**-8]))


def test_state_dict_matches_fla_layer_and_loads_strictly():
    parity.check_state_dict("retnet")


def test_auto_is_the_twin_on_cpu():
    if torch.cuda.is_available():
        pytest.skip("auto picks fla on a CUDA machine")
    assert mixers.build("retnet", 64, 2).kernel == "torch"


def _norm_weight(layer):
    # A non-trivial norm weight, so its gradient and its use are both exercised.
    layer.g_norm_swish_gate.weight.uniform_(0.5, 1.5)


@pytest.mark.interpreter
@pytest.mark.parametrize("T", [45, 77], ids=lambda t: f"B2-T{t}-D64-H2")
def test_twin_matches_fla_layer_forward_and_gradients(T):
    """fla's layer (chunk kernel, as under autograd) run by Triton's interpreter vs the twin with
    the same weights: output, input gradient and every parameter gradient within 1e-4 abs."""
    tol = parity.absolute(1e-4)
    parity.check_forward_and_gradients(*parity.fla_pair("retnet", init=_norm_weight), torch.randn(2, T, 64),
                                       tol, tol, tol)


@pytest.mark.interpreter
def test_twin_matches_fla_fused_recurrent_inference():
    """Under no_grad at T <= 64 fla switches to its fused_recurrent kernel: 1e-4 abs."""
    parity.check_inference(*parity.fla_pair("retnet", init=_norm_weight), torch.randn(1, 45, 64),
                           parity.absolute(1e-4))


@pytest.mark.parametrize("T", [1, 130, 1100], ids=lambda t: f"B2-T{t}-D64-H2")
def test_reference_kernel_matches_twin(T):
    """Same projections, fla's naive core (one pass) vs ours; T=1100 crosses a segment border: 1e-4 abs."""
    parity.check_reference_kernel("retnet", T, parity.absolute(1e-4), hidden=64, heads=2)


def test_bf16_close_to_fp32():
    torch.manual_seed(0)
    twin = mixers.build("retnet", 64, 2, kernel="torch")
    x = torch.randn(2, 130, 64)
    with torch.no_grad():
        reference = twin(x)
        low = twin.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert low.dtype == torch.bfloat16
    # bf16 keeps 8 bits of mantissa; projections and output round at ~4e-3 relative each.
    assert (low.float() - reference).abs().max() <= 3e-2 * reference.abs().max()


def test_rejects_wrong_input():
    twin = mixers.build("retnet", 64, 2, kernel="torch")
    with pytest.raises(ValueError, match="expected input"):
        twin(torch.randn(1, 5, 63))
    with pytest.raises(ValueError, match="expected input"):
        twin(torch.randn(1, 0, 64))
    with pytest.raises(ValueError, match="segment must be"):
        mixers.build("retnet", 64, 2, kernel="torch", segment=0)


def test_cost_counts_weights_and_state():
    twin = mixers.build("retnet", 1024, 4, kernel="torch")
    cost = mixers.cost("retnet", 100, 1024, 4, batch=2, dtype_bytes=2, kernel="torch")
    assert cost.weight_bytes == 2 * sum(p.numel() for p in twin.parameters())
    assert cost.state_bytes == 2 * 4 * 256 * 512 * 4  # fp32 state [B, H, K, V]


@pytest.mark.parametrize("frames_, hidden", [(700, 1024), (1500, 256)], ids=["T700-D1024-one-segment",
                                                                          "T1500-D256-two-segments"])
def test_cost_model_predicts_measured_peak_short(frames_, hidden):
    parity.check_cost_model("retnet", frames_, hidden=hidden)


def test_memory_beyond_a_segment_grows_by_the_output_only():
    """Each further segment adds its share of the output [B, T, D] and nothing else: the measured
    peaks at 4 and 3 segments (of 256 here) differ by one segment's output, within 5% (fp32, inference)."""
    torch.manual_seed(0)
    segment = 256
    twin = mixers.build("retnet", 128, 4, kernel="torch", segment=segment)
    peaks = []
    for n in (3, 4):
        x = torch.randn(1, n * segment, 128)
        with torch.inference_mode():
            peaks.append(peak_memory(lambda x=x: twin(x), "cpu").above_bytes)
    assert peaks[1] - peaks[0] == pytest.approx(segment * 128 * 4, rel=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("seconds", [100, 200], ids=lambda s: f"{s}s-D1024-H4")
def test_cost_model_predicts_measured_peak(seconds):
    parity.check_cost_model("retnet", frames(seconds))
