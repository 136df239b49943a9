"""GSA twin: core against fla's naive_recurrent_gsa and the paper's recurrence, layer against
fla's own layer (interpreter)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mixers
from mixers.gsa import SEGMENT, GSATwin, slot_attention
from tests.mixers import parity


def paper_recurrence(q, k, v, s, g, scale, initial_state=None):
    """Gated slot attention step by step, in fp64, from the paper's equations."""
    B, T, H, K = q.shape
    V, M = v.shape[-1], s.shape[-1]
    q, k, v, s, g = (x.double() for x in (q, k, v, s, g))
    Hk = torch.zeros(B, H, K, M, dtype=torch.float64)
    Hv = torch.zeros(B, H, M, V, dtype=torch.float64)
    if initial_state is not None:
        Hk, Hv = Hk + initial_state[0].double(), Hv + initial_state[1].double()
    o = torch.zeros(B, T, H, V, dtype=torch.float64)
    for t in range(T):
        decay = g[:, t].exp()  # [B, H, M]
        Hk = Hk * decay[:, :, None, :] + k[:, t, :, :, None] * s[:, t, :, None, :]
        p = torch.softmax(scale * (q[:, t, :, :, None] * Hk).sum(-2), dim=-1)  # [B, H, M]
        Hv = Hv * decay[..., None] + s[:, t, :, :, None] * v[:, t, :, None, :]
        o[:, t] = (p[..., None] * Hv).sum(-2)
    return o, (Hk, Hv)


def core_inputs(T, gate_scale=1.0, dtype=torch.float32, B=2, H=2, K=24, M=20, V=16, seed=0):
    """Swish features, silu values and GSA's gates, as the layer makes them."""
    gen = torch.Generator().manual_seed(seed)
    q, k = (F.silu(torch.randn(B, T, H, K, generator=gen, dtype=dtype)) for _ in range(2))
    v = F.silu(torch.randn(B, T, H, V, generator=gen, dtype=dtype))
    g = F.logsigmoid(gate_scale * torch.randn(B, T, H, M, generator=gen, dtype=dtype)) / 8
    s = 1 - g.exp()
    h0 = (torch.randn(B, H, K, M, generator=gen, dtype=dtype), torch.randn(B, H, M, V, generator=gen, dtype=dtype))
    return q, k, v, s, g, h0


@pytest.mark.parametrize("T", [1, 45, 77, 130], ids=lambda t: f"T{t}")
def test_core_matches_fla_naive_recurrent_gsa(T):
    from fla.ops.gsa.naive import naive_recurrent_gsa

    q, k, v, s, g, h0 = core_inputs(T)
    o, (hk, hv) = slot_attention(q, k, v, s, g, scale=1.0, initial_state=h0)
    o_ref, (hk_ref, hv_ref) = naive_recurrent_gsa(q, k, v, s, g, scale=1.0, initial_state=h0,
                                                  output_final_state=True)
    # fp32 against fp32 at unit-scale inputs: 1e-4 absolute.
    torch.testing.assert_close(o, o_ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(hk, hk_ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(hv, hv_ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("gate_scale", [1.0, 2000.0], ids=["unit", "gates2000"])
def test_core_matches_paper_recurrence_fp64(gate_scale):
    """Gate logits of thousands give per-step log decays of hundreds: the stable path."""
    q, k, v, s, g, h0 = core_inputs(99, gate_scale=gate_scale, dtype=torch.float64)
    o, (hk, hv) = slot_attention(q, k, v, s, g, scale=0.7, initial_state=h0)
    o_ref, (hk_ref, hv_ref) = paper_recurrence(q, k, v, s, g, 0.7, h0)
    torch.testing.assert_close(o, o_ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(hk, hk_ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(hv, hv_ref, atol=1e-10, rtol=0)


def test_state_dict_matches_fla_layer():
    parity.check_state_dict("gsa")


@pytest.mark.parametrize("T", [1, 2, 63, 65, 130], ids=lambda t: f"T{t}")
def test_twin_matches_reference_kernel(T):
    """The same projections around fla's per-step naive_recurrent_gsa: 1e-4 absolute."""
    parity.check_reference_kernel("gsa", T, parity.absolute(1e-4))


def test_segments_equal_one_pass():
    torch.manual_seed(0)
    whole = GSATwin(64, 2, segment=1000).double()
    pieces = GSATwin(64, 2, segment=30).double()
    pieces.load_state_dict(whole.state_dict())
    x = torch.randn(2, 77, 64, dtype=torch.float64)
    torch.testing.assert_close(pieces(x), whole(x), atol=1e-10, rtol=0)


def test_bf16_close_to_fp32():
    torch.manual_seed(0)
    twin = mixers.build("gsa", 64, 2, kernel="torch")
    x = torch.randn(1, 150, 64)
    with torch.no_grad():
        reference = twin(x)
        low = twin.bfloat16()(x.bfloat16()).float()
    # bf16 projections, slots and output (8-bit mantissa), fp32 inside the core: 2e-2 of the scale.
    assert (low - reference).abs().max() <= 2e-2 * reference.abs().max()


def test_rejects_bad_input():
    twin = mixers.build("gsa", 64, 2, kernel="torch")
    with pytest.raises(ValueError, match="expected input"):
        twin(torch.randn(1, 0, 64))
    with pytest.raises(ValueError, match="gsa kernel"):
        mixers.gsa.build("triton", 64, 2)


# --- fla's own layer, run by Triton's interpreter on CPU ----------------------------------------
# fla runs fused_recurrent for T <= 64 and chunk above: 45 and 77 cover both, neither a multiple of 64.


@pytest.mark.interpreter
@pytest.mark.parametrize("T", [45, 77], ids=lambda t: f"T{t}")
def test_twin_matches_fla_layer_forward_and_gradients(T):
    """Output and input gradient: 1e-4 absolute at unit-scale inputs; parameter gradients sum over
    all 2*T tokens: 1e-5 of the largest entry (+1e-6)."""
    parity.check_forward_and_gradients(*parity.fla_pair("gsa"), torch.randn(2, T, 64), parity.absolute(1e-4),
                                       parity.absolute(1e-4), parity.relative(1e-5, 1e-6))


@pytest.mark.interpreter
def test_twin_matches_fla_layer_at_one_step():
    """T=1 without gradients is fla's single-token inference kernel."""
    parity.check_inference(*parity.fla_pair("gsa"), torch.randn(3, 1, 64), parity.absolute(1e-4))


@pytest.mark.interpreter
def test_bf16_twin_matches_fla_layer_fused_recurrent():
    parity.check_bf16_fused_recurrent("gsa")


# --- cost model ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("frames", [4999, 9999], ids=lambda f: f"L{f}")
def test_cost_model_predicts_measured_peak(frames):
    assert frames > SEGMENT  # the multi-segment branch of the model is the one exercised
    parity.check_cost_model("gsa", frames)
