"""Recurrent forms (mixers.stream): stepping through T frames equals one causal parallel pass.

Tolerances: fp32 max abs error <= 1e-5 on outputs of order 1 ("exactly" up to fp32 rounding:
the two forms sum in different orders); states within 1e-5 of their largest entry. bf16: the
parallel and recurrent forms round different intermediates to bf16 (2^-8 relative), so outputs
agree within 2e-2 of the output's largest entry. fp64: 1e-12 (1e-6 where a parallel core keeps
some arithmetic in fp32, see FP64_LOOSE).
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

import mixers
from mixers.stream import STEPPERS, stepper

# Mixers another change may not have registered yet are left out rather than failing here.
CASES = [case for case in STEPPERS if case[0] in mixers.names()]
IDS = [f"{name}-{kernel}" for name, kernel in CASES]
D, H, B = 64, 2, 2
GROWING = {"sa", "fox"}


@functools.cache
def _module(name: str, kernel: str) -> torch.nn.Module:
    torch.manual_seed(0)
    options = {"causal": True} if name == "sa" else {}
    module = mixers.build(name, D, H, kernel=kernel, **options).eval()
    if hasattr(module, "dt_bias"):
        # KDA, Gated DeltaNet: random gate biases instead of fla's tiny init, so the decays matter.
        with torch.no_grad():
            module.dt_bias.normal_()
    return module


@pytest.fixture(autouse=True)
def one_thread():
    """Steps are many small ops: on a shared 2-core machine a second thread only spins (10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _frames(T: int, seed: int = 1, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(B, T, D, generator=torch.Generator().manual_seed(seed)).to(dtype)


def _parallel(module, x):
    with torch.no_grad():
        return module(x)


def _max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


@pytest.mark.parametrize("T", [1, 77, 300], ids=lambda t: f"T{t}")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_stepping_equals_parallel(case, T):
    """T = 77 crosses a 64-frame chunk border, 300 the twins' 256-frame blocks; both ragged."""
    module = _module(*case)
    x = _frames(T)
    y = _parallel(module, x)
    y_stream, state = stepper(module).run(x)
    assert state.length == T
    assert _max_error(y_stream, y) <= 1e-5, f"max |step - parallel| = {_max_error(y_stream, y):.2e}"


# In fp64 the two forms agree to ~1e-15: the same function, summed in another order. Except where
# a parallel core is not exact in fp64 itself: delta_chunk keeps its cumulative decays in fp32 (as
# fla's kernels), and the chunked delta-rule and Mamba2 cores differ by up to 2e-7 at T = 300.
FP64_LOOSE = {"kda", "deltanet", "gated_deltanet", "mamba2"}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_stepping_equals_parallel_in_fp64(case):
    module = mixers.build(case[0], D, H, kernel=case[1], **({"causal": True} if case[0] == "sa" else {}))
    module.load_state_dict(_module(*case).state_dict())
    module = module.eval().double()
    x = _frames(300, seed=15, dtype=torch.float64)
    y_stream, state = stepper(module).run(x)
    assert all(t.dtype == torch.float64 for t in state.tensors())
    assert _max_error(y_stream, _parallel(module, x)) <= (1e-6 if case[0] in FP64_LOOSE else 1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name, T", [("lightnet", 1100), ("gsa", 1100), ("kda", 2100)],
                         ids=["lightnet-T1100", "gsa-T1100", "kda-T2100"])
def test_stepping_equals_parallel_across_the_twins_segments(name, T):
    """The parallel twins run in segments (LightNet and GSA 1024 frames, KDA 2048) carrying state."""
    module, x = _module(name, "torch"), _frames(T, seed=12)[:1]
    assert _max_error(stepper(module).run(x)[0], _parallel(module, x)) <= 1e-5


OPTIONS = [("fox", dict(use_output_gate=True, qkv_bias=True)), ("kda", dict(conv_bias=True, allow_neg_eigval=True)),
           ("gsa", dict(num_slots=12)), ("reslstm", dict(width=24, num_layers=3))]


@pytest.mark.parametrize("name, options", OPTIONS, ids=[n for n, _ in OPTIONS])
def test_stepping_equals_parallel_with_non_default_options(name, options):
    """Output gate, biases, conv bias, negative eigenvalues, slots, depth: all reach the step."""
    torch.manual_seed(0)
    module = mixers.build(name, D, H, kernel="torch", **options).eval()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn_like(p))  # biases off their zero init
    x = _frames(40, seed=13)
    assert _max_error(stepper(module).run(x)[0], _parallel(module, x)) <= 1e-5


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_prefill_then_step_equals_parallel(case):
    module, x = _module(*case), _frames(77, seed=2)
    y, s = _parallel(module, x), stepper(module)
    state = s.prefill(x[:, :70])
    assert state.length == 70
    outputs = []
    for t in range(70, 77):
        y_t, state = s.step(state, x[:, t])
        outputs.append(y_t)
    assert _max_error(torch.stack(outputs, 1), y[:, 70:]) <= 1e-5


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_prefill_equals_stepping(case):
    s, x = stepper(_module(*case)), _frames(77, seed=3)
    prefilled, stepped = s.prefill(x), s.run(x)[1]
    for a, b in zip(prefilled.tensors(), stepped.tensors(), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert _max_error(a, b) <= 1e-5 * max(1.0, b.abs().max().item())
    empty, init = s.prefill(x[:, :0]), s.init(B)
    assert empty.length == 0
    for a, b in zip(empty.tensors(), init.tensors(), strict=True):
        assert a.shape == b.shape and torch.equal(a, b)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_state_bytes_match_the_cost_model_and_grow_only_for_caches(case):
    """The stream state is what each mixer's analytical cost model calls its recurrent state."""
    name, kernel = case
    s, x = stepper(_module(*case)), _frames(40, seed=4)
    sizes = {T: s.state_bytes(s.prefill(x[:, :T])) for T in (0, 10, 40)}
    assert sizes[40] == sum(t.numel() * t.element_size() for t in s.prefill(x[:, :40]).tensors())
    expected = mixers.cost(name, length=40, hidden_size=D, num_heads=H, batch=B, kernel=kernel).state_bytes
    extra = B * H * 8 if name == "fox" else 0  # FoX also keeps the running sum of its gates in fp64
    assert sizes[40] == expected + extra
    if name in GROWING:
        assert sizes[0] == extra and sizes[40] - sizes[10] == 3 * (sizes[10] - sizes[0]) > 0
    else:
        assert sizes[0] == sizes[10] == sizes[40]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_step_leaves_its_input_state_unchanged(case):
    s, x = stepper(_module(*case)), _frames(12, seed=5)
    state = s.prefill(x[:, :10])
    before = [t.clone() for t in state.tensors()]
    y_first, _ = s.step(state, x[:, 10])
    s.step(state, x[:, 11])
    y_again, child = s.step(state, x[:, 10])
    assert torch.equal(y_first, y_again)
    assert all(torch.equal(a, b) for a, b in zip(before, state.tensors(), strict=True))
    # A clone is independent: stepping the original again does not change the clone's child.
    branch = s.clone_state(child)
    y_branch, _ = s.step(branch, x[:, 11])
    s.step(child, x[:, 0])
    assert torch.equal(s.step(branch, x[:, 11])[0], y_branch)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bf16_stepping_matches_parallel(case):
    module = _module(*case)
    s_fp32 = stepper(module)
    module_bf16 = mixers.build(*case[:1], D, H, kernel=case[1], **({"causal": True} if case[0] == "sa" else {}))
    module_bf16.load_state_dict(module.state_dict())
    module_bf16 = module_bf16.eval().to(torch.bfloat16)
    x = _frames(40, seed=6, dtype=torch.bfloat16)
    y = _parallel(module_bf16, x)
    y_stream, state = stepper(module_bf16).run(x)
    assert y_stream.dtype == torch.bfloat16
    assert _max_error(y_stream, y) <= 2e-2 * y.float().abs().max().item()
    assert s_fp32.state_bytes(s_fp32.prefill(x.float())) >= stepper(module_bf16).state_bytes(state)


@pytest.mark.parametrize("case", [("sa", "sdpa"), ("kda", "torch")], ids=["sa-sdpa", "kda-torch"])
def test_a_stepper_follows_new_weights(case):
    """Fused projections are cached; loading other weights (in place) must refresh them."""
    module = mixers.build(case[0], D, H, kernel=case[1], **({"causal": True} if case[0] == "sa" else {})).eval()
    s, x = stepper(module), _frames(8, seed=14)
    s.run(x)
    module.load_state_dict(_module(*case).state_dict())
    assert _max_error(s.run(x)[0], _parallel(module, x)) <= 1e-5


# --- direct checks against fla's references ----------------------------------------------------

@pytest.mark.parametrize("name", [n for n in ("retnet", "lightnet", "gsa", "fox", "kda", "gla", "deltanet",
                                            "gated_deltanet", "mamba2", "hgrn2") if n in mixers.names()])
def test_stepping_equals_the_fla_reference_kernel(name):
    """The same weights in the ``reference`` kernel (fla's naive ops around the twin's projections)."""
    reference = mixers.build(name, D, H, kernel="reference")
    reference.load_state_dict(_module(name, "torch").state_dict())
    x = _frames(77, seed=7)
    y_stream, _ = stepper(_module(name, "torch")).run(x)
    assert _max_error(y_stream, _parallel(reference.eval(), x)) <= 2e-5


def _core_inputs(T, H=2, K=16, V=12, seed=8):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(B, T, H, K, generator=gen), torch.randn(B, T, H, K, generator=gen),
            torch.randn(B, T, H, V, generator=gen), gen)


def test_retention_step_matches_fla_naive_recurrent_gla():
    from fla.ops.gla.naive import naive_recurrent_gla

    from mixers.retnet import log_decays
    from mixers.stream.retnet import retention_step

    T = 50
    q, k, v, _ = _core_inputs(T)
    g = log_decays(2, q.device).view(1, 1, 2, 1).expand_as(q)
    o_ref, S_ref = naive_recurrent_gla(q, k, v, g, output_final_state=True)
    S, outputs = torch.zeros(B, 2, 16, 12), []
    for t in range(T):
        o, S = retention_step(S, q[:, t], k[:, t], v[:, t], log_decays(2, q.device).exp(), 16**-0.5)
        outputs.append(o)
    assert _max_error(torch.stack(outputs, 1), o_ref) <= 1e-5 and _max_error(S, S_ref) <= 1e-5


def test_lightnet_step_matches_fla_naive_recurrent_gla_with_torch_logcumsumexp():
    from fla.ops.gla.naive import naive_recurrent_gla

    from mixers.stream.lightnet import lightnet_step

    T = 50
    q, u, v, _ = _core_inputs(T)
    z = torch.logcumsumexp(u, dim=1)
    k, g = (u - z).exp(), torch.cat((z[:, :1], z[:, :-1]), 1) - z
    o_ref, S_ref = naive_recurrent_gla(q, k, v, g, output_final_state=True)
    S, zs, outputs = torch.zeros(B, 2, 16, 12), torch.full((B, 2, 16), float("-inf")), []
    for t in range(T):
        o, S, zs = lightnet_step(S, zs, q[:, t], u[:, t], v[:, t])
        outputs.append(o)
    assert _max_error(torch.stack(outputs, 1), o_ref) <= 1e-5 and _max_error(S, S_ref) <= 1e-5


def test_slot_step_matches_fla_naive_recurrent_gsa():
    from fla.ops.gsa.naive import naive_recurrent_gsa

    from mixers.stream.gsa import slot_step

    T, M = 50, 10
    q, k, v, gen = _core_inputs(T)
    q, k, v = F.silu(q), F.silu(k), F.silu(v)
    f = F.logsigmoid(torch.randn(B, T, 2, M, generator=gen)) / 8
    s = 1 - f.exp()
    o_ref, (hk_ref, hv_ref) = naive_recurrent_gsa(q, k, v, s, f, scale=0.5, output_final_state=True)
    hk, hv, outputs = torch.zeros(B, 2, 16, M), torch.zeros(B, 2, M, 12), []
    for t in range(T):
        o, hk, hv = slot_step(hk, hv, q[:, t], k[:, t], v[:, t], s[:, t], f[:, t], 0.5)
        outputs.append(o)
    assert _max_error(torch.stack(outputs, 1), o_ref) <= 1e-5
    assert _max_error(hk, hk_ref) <= 1e-5 and _max_error(hv, hv_ref) <= 1e-5


def test_delta_step_matches_fla_naive_recurrent_kda():
    from fla.ops.kda.naive import naive_recurrent_kda

    from mixers.stream.delta_rule import delta_step, l2norm

    T = 50
    q, k, v, gen = _core_inputs(T)
    q, k = l2norm(q), l2norm(k)
    g = -F.softplus(torch.randn(B, T, 2, 16, generator=gen))
    beta = torch.rand(B, T, 2, generator=gen)
    o_ref, S_ref = naive_recurrent_kda(q, k, v, g, beta, output_final_state=True)
    S, outputs = torch.zeros(B, 2, 16, 12), []
    for t in range(T):
        o, S = delta_step(S, q[:, t] * 16**-0.5, k[:, t], v[:, t], g[:, t], beta[:, t])
        outputs.append(o)
    assert _max_error(torch.stack(outputs, 1), o_ref) <= 1e-5 and _max_error(S, S_ref) <= 1e-5


@pytest.mark.interpreter
def test_retention_step_matches_fla_fused_recurrent_retention():
    """fla's Triton recurrence under the interpreter, continuing from a state."""
    from fla.ops.retention import fused_recurrent_retention

    from mixers.retnet import log_decays
    from mixers.stream.retnet import retention_step

    T = 12
    q, k, v, gen = _core_inputs(T)
    S0 = torch.randn(B, 2, 16, 12, generator=gen)
    o_ref, S_ref = fused_recurrent_retention(q, k, v, initial_state=S0, output_final_state=True)
    S, outputs = S0, []
    for t in range(T):
        o, S = retention_step(S, q[:, t], k[:, t], v[:, t], log_decays(2, q.device).exp(), 16**-0.5)
        outputs.append(o)
    assert _max_error(torch.stack(outputs, 1), o_ref) <= 1e-5 and _max_error(S, S_ref) <= 1e-5


@pytest.mark.parametrize("case", [("sa", "sdpa"), ("fox", "torch")], ids=["sa-sdpa", "fox-torch"])
def test_a_cache_prefilled_under_inference_mode_steps_outside_it(case):
    module, x = _module(*case), _frames(21, seed=11)
    s = stepper(module)
    with torch.inference_mode():
        state = s.prefill(x[:, :20])
    assert _max_error(s.step(state, x[:, 20])[0], _parallel(module, x)[:, 20]) <= 1e-5


@pytest.mark.interpreter
def test_slot_step_matches_fla_gsa_decoding_kernel():
    """fla's one-token GSA kernel (what its layer runs when decoding), frame by frame, interpreted."""
    from fla.ops.gsa.fused_recurrent import fused_recurrent_gsa_inference

    from mixers.stream.gsa import slot_step

    T, M = 6, 10
    q, k, v, gen = _core_inputs(T)
    q, k, v = F.silu(q), F.silu(k), F.silu(v)
    f = F.logsigmoid(torch.randn(B, T, 2, M, generator=gen)) / 8
    s = 1 - f.exp()
    hk, hv = torch.randn(B, 2, 16, M, generator=gen), torch.randn(B, 2, M, 12, generator=gen)
    state = (hk, hv)
    for t in range(T):
        frame = [x[:, t : t + 1].contiguous() for x in (q, k, v, s, f)]
        o_ref, state = fused_recurrent_gsa_inference(*frame, initial_state=state, output_final_state=True, scale=0.5)
        o, hk, hv = slot_step(hk, hv, q[:, t], k[:, t], v[:, t], s[:, t], f[:, t], 0.5)
        assert _max_error(o, o_ref[:, 0]) <= 1e-5
    assert _max_error(hk, state[0]) <= 1e-5 and _max_error(hv, state[1]) <= 1e-5


# --- softmax attention: streaming is causal ------------------------------------------------------

@pytest.mark.parametrize("kernel", ["sdpa", "naive"])
def test_non_causal_attention_streams_as_its_causal_form(kernel):
    module = mixers.build("sa", D, H, kernel=kernel)  # causal=False, the SER default
    x = _frames(30, seed=9)
    y_stream, _ = stepper(module).run(x)
    module.causal = True
    assert _max_error(y_stream, _parallel(module, x)) <= 1e-5
    module.causal = False
    assert _max_error(y_stream[:, :-1], _parallel(module, x)[:, :-1]) > 1e-3  # not the non-causal output


# --- errors -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, kernel", [("gsa", "fla"), ("kda", "reference")])
def test_kernels_without_a_recurrent_form_are_refused_by_name(name, kernel):
    with pytest.raises(ValueError, match=f"{name}.*{kernel}"):
        stepper(mixers.build(name, D, H, kernel=kernel))


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="mixers.build"):
        stepper(torch.nn.Linear(4, 4))
    s = stepper(_module("retnet", "torch"))
    state = s.init(B)
    with pytest.raises(ValueError, match="one frame"):
        s.step(state, _frames(3))
    with pytest.raises(ValueError, match="batch"):
        s.step(state, torch.randn(B + 1, D))
    with pytest.raises(ValueError, match="frames"):
        s.prefill(torch.randn(B, 3, D + 1))


def test_reslstm_with_batch_norm_streams_in_eval_mode_only():
    module = mixers.build("reslstm", D, H, kernel="torch", batch_norm=True)
    x = _frames(20, seed=10)
    with pytest.raises(ValueError, match="eval"):
        stepper(module).prefill(x)
    module.train()(x)  # a training pass, so the running statistics are not the identity
    module.eval()
    assert _max_error(stepper(module).run(x)[0], _parallel(module, x)) <= 1e-5
