"""LightNet twin: core against the paper's recurrence, layer against fla's own layer (interpreter)."""

from __future__ import annotations

import pytest
import torch

import mixers
from mixers import lightnet
from mixers.cores.chunkwise_lightnet import additive_group
from mixers.cores.inplace_lightnet import additive_group_inplace, running_sum
from mixers.lightnet import SEGMENT, LightNetTwin, additive_gate, lightnet_attention, log_cumsum_exp
from tests.mixers import parity


def paper_recurrence(q, u, v, scale):
    """LightNet's additive recurrence as the paper writes it, in fp64: per key channel, a running
    sum of exp(u) and of exp(u) v^T; the output reads their ratio. No gates, no log space."""
    B, T, H, F = q.shape
    V = v.shape[-1]
    q, u, v = q.double(), u.double(), v.double()
    den = torch.zeros(B, H, F, dtype=torch.float64)
    num = torch.zeros(B, H, F, V, dtype=torch.float64)
    o = torch.zeros(B, T, H, V, dtype=torch.float64)
    for t in range(T):
        e = u[:, t].exp()
        den = den + e
        num = num + e[..., None] * v[:, t, :, None, :]
        o[:, t] = scale * (q[:, t, :, :, None] * num / den[..., None]).sum(-2)
    return o


def core_inputs(T, logit_scale=1.0, dtype=torch.float32, B=2, H=2, F=32, V=24, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(B, T, H, F, generator=gen, dtype=dtype)
    u = logit_scale * torch.randn(B, T, H, F, generator=gen, dtype=dtype)
    v = torch.randn(B, T, H, V, generator=gen, dtype=dtype)
    return q, u, v


@pytest.mark.parametrize("T", [1, 63, 65, 130], ids=lambda t: f"T{t}")
@pytest.mark.parametrize("scale", [1.0, 100.0], ids=["unit", "x100"])
def test_log_cumsum_exp_matches_torch(T, scale):
    """x100 spreads a chunk beyond 80, which takes the fallback to torch's own op."""
    x = scale * torch.randn(2, T, 3, 5, dtype=torch.float64)
    torch.testing.assert_close(log_cumsum_exp(x), torch.logcumsumexp(x, dim=1), atol=1e-12, rtol=0)


def test_log_cumsum_exp_gradient_matches_finite_differences():
    x = torch.randn(1, 77, 1, 2, dtype=torch.float64, requires_grad=True)  # two chunks of 64
    assert torch.autograd.gradcheck(log_cumsum_exp, (x,), fast_mode=True)


@pytest.mark.parametrize("grad", [False, True], ids=["inplace", "autograd"])
@pytest.mark.parametrize("T", [1, 2, 45, 77, 130], ids=lambda t: f"T{t}")
def test_core_matches_paper_recurrence_fp32(T, grad):
    """Both forms of the additive core: in place (nothing needs a gradient) and batched (autograd)."""
    q, u, v = (x.requires_grad_(grad) for x in core_inputs(T))
    o, _ = lightnet_attention(q, u, v)
    assert o.requires_grad == grad
    # fp32 at unit-scale inputs: 1e-4 absolute.
    torch.testing.assert_close(o.detach().double(), paper_recurrence(q.detach(), u.detach(), v.detach(), 32**-0.5),
                               atol=1e-4, rtol=0)


@pytest.mark.parametrize("logit_scale", [1.0, 40.0], ids=["unit", "logits40"])
def test_core_matches_paper_recurrence_fp64(logit_scale):
    """Logits of +-100 make the gate's log decays reach hundreds within a chunk: the stable path."""
    q, u, v = core_inputs(99, logit_scale=logit_scale, dtype=torch.float64)
    o, _ = lightnet_attention(q, u, v)
    torch.testing.assert_close(o, paper_recurrence(q, u, v, 32**-0.5), atol=1e-10, rtol=0)


@pytest.mark.parametrize("logit_scale, gated", [(1.0, False), (40.0, True)], ids=["unit-additive", "logits40-gated"])
def test_logit_spread_selects_the_core(monkeypatch, logit_scale, gated):
    """Unit logits take the additive form; logits spread by tens of nats within a group take the
    gated one (the fp64 case above checks its result): pin which runs."""
    calls = []
    monkeypatch.setattr(lightnet, "additive_gate", lambda *a: calls.append(1) or additive_gate(*a))
    q, u, v = core_inputs(99, logit_scale=logit_scale, dtype=torch.float64)
    lightnet_attention(q, u, v)
    assert bool(calls) == gated


@pytest.mark.parametrize("needs_grad, inference", [(None, False), ("q", False), ("S", False), ("q", True)],
                         ids=["no-grad-inputs", "q", "state", "q-inference-mode"])
def test_gradient_need_selects_the_form(monkeypatch, needs_grad, inference):
    """The in-place form runs only when no input (nor the carried state) needs a gradient or
    autograd is off; otherwise the batched form autograd can follow."""
    calls = []
    monkeypatch.setattr(lightnet, "additive_group", lambda *a: calls.append("batched") or additive_group(*a))
    monkeypatch.setattr(lightnet, "additive_group_inplace",
                        lambda *a: calls.append("inplace") or additive_group_inplace(*a))
    q, u, v = core_inputs(70)
    _, state = lightnet_attention(q[:, :5], u[:, :5], v[:, :5])
    calls.clear()
    S, z = state
    q.requires_grad_(needs_grad == "q")
    S.requires_grad_(needs_grad == "S")
    with torch.inference_mode(inference):
        lightnet_attention(q, u, v, (S, z))
    assert calls == ["batched" if needs_grad and not inference else "inplace"]


@pytest.mark.parametrize("L", [16, 48, 1024], ids=lambda n: f"L{n}")
def test_running_sum_matches_cumsum(L):
    """The blocked running sum of the in-place form: (into + cumsum(ke)) / scale, to fp64 rounding."""
    ke, into = torch.rand(2, L, 3, 5, dtype=torch.float64), torch.rand(2, 1, 3, 5, dtype=torch.float64)
    torch.testing.assert_close(running_sum(ke, into, 0.25), (into + ke.cumsum(1)) / 0.25, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("group", [64, 1024], ids=lambda g: f"group{g}")
def test_core_gradients_match_finite_differences(monkeypatch, group):
    """fp64 gradcheck of the additive core, also across group borders (the carried S and z)."""
    monkeypatch.setattr(lightnet, "GROUP", group)
    q, u, v = (x.requires_grad_() for x in core_inputs(130, B=1, H=1, F=4, V=3, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda *x: lightnet_attention(*x)[0], (q, u, v), fast_mode=True)


def test_core_matches_fla_naive_recurrent_gla():
    q, u, v = core_inputs(77)
    o, (S, z) = lightnet_attention(q, u, v)
    o_ref, (S_ref, z_ref) = lightnet_attention(q, u, v, naive=True)
    torch.testing.assert_close(o, o_ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(S, S_ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("cut", [1, 50, 64], ids=lambda c: f"cut{c}")
def test_core_in_segments_equals_one_pass(cut):
    q, u, v = core_inputs(101, dtype=torch.float64)
    o_full, (S_full, z_full) = lightnet_attention(q, u, v)
    o1, state = lightnet_attention(q[:, :cut], u[:, :cut], v[:, :cut])
    o2, (S, z) = lightnet_attention(q[:, cut:], u[:, cut:], v[:, cut:], state)
    torch.testing.assert_close(torch.cat((o1, o2), 1), o_full, atol=1e-10, rtol=0)
    torch.testing.assert_close(S, S_full, atol=1e-10, rtol=0)
    torch.testing.assert_close(z, z_full, atol=1e-10, rtol=0)


def test_state_dict_matches_fla_layer():
    parity.check_state_dict("lightnet")


@pytest.mark.parametrize("T", [1, 2, 63, 65, 130], ids=lambda t: f"T{t}")
def test_twin_matches_reference_kernel(T):
    """The same projections around fla's per-step naive_recurrent_gla: 1e-4 absolute."""
    parity.check_reference_kernel("lightnet", T, parity.absolute(1e-4))


def test_segments_equal_one_pass():
    torch.manual_seed(0)
    whole = LightNetTwin(64, 2, segment=1000).double()
    pieces = LightNetTwin(64, 2, segment=30).double()
    pieces.load_state_dict(whole.state_dict())
    x = torch.randn(2, 77, 64, dtype=torch.float64)
    torch.testing.assert_close(pieces(x), whole(x), atol=1e-10, rtol=0)


def test_bf16_close_to_fp32():
    torch.manual_seed(0)
    twin = mixers.build("lightnet", 64, 2, kernel="torch")
    x = torch.randn(1, 150, 64)
    with torch.no_grad():
        reference = twin(x)
        low = twin.bfloat16()(x.bfloat16()).float()
    # bf16 projections and output (8-bit mantissa), fp32 inside the core: 2e-2 of the output scale.
    assert (low - reference).abs().max() <= 2e-2 * reference.abs().max()


def test_rejects_bad_input():
    twin = mixers.build("lightnet", 64, 2, kernel="torch")
    with pytest.raises(ValueError, match="expected input"):
        twin(torch.randn(1, 5, 32))
    with pytest.raises(ValueError, match="lightnet kernel"):
        mixers.lightnet.build("triton", 64, 2)


# --- fla's own layer, run by Triton's interpreter on CPU ----------------------------------------
# fla runs fused_recurrent for T <= 64 and chunk above: 45 and 77 cover both, neither a multiple of 64.


@pytest.mark.interpreter
@pytest.mark.parametrize("T", [45, 77], ids=lambda t: f"T{t}")
def test_twin_matches_fla_layer_forward_and_gradients(T):
    """Output and input gradient: 1e-4 absolute at unit-scale inputs; parameter gradients sum over
    all 2*T tokens: 1e-5 of the largest entry (+1e-6)."""
    parity.check_forward_and_gradients(*parity.fla_pair("lightnet"), torch.randn(2, T, 64), parity.absolute(1e-4),
                                       parity.absolute(1e-4), parity.relative(1e-5, 1e-6))


@pytest.mark.interpreter
def test_twin_matches_fla_layer_at_one_step():
    parity.check_inference(*parity.fla_pair("lightnet"), torch.randn(3, 1, 64), parity.absolute(1e-4))


@pytest.mark.interpreter
def test_bf16_twin_matches_fla_layer_fused_recurrent():
    parity.check_bf16_fused_recurrent("lightnet")


# --- cost model ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("frames", [4999, 9999], ids=lambda f: f"L{f}")
def test_cost_model_predicts_measured_peak(frames):
    assert frames > SEGMENT  # the multi-segment branch of the model is the one exercised
    parity.check_cost_model("lightnet", frames)
