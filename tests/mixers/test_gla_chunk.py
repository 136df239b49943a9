"""gla_chunk against fla's naive recurrence and a step-by-step recurrence written here."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.memory import peak_memory
from mixers.cores.chunkwise_gla import gla_chunk, scratch_bytes


def step_by_step(q, k, v, g=None, gv=None, scale=None, initial_state=None):
    """S_t = diag(exp g_t) S_{t-1} diag(exp gv_t) + k_t v_t^T, o_t = scale S_t^T q_t, in fp64."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    scale = K ** -0.5 if scale is None else scale
    q, k, v = q.double(), k.double(), v.double()
    S = torch.zeros(B, H, K, V, dtype=torch.float64)
    if initial_state is not None:
        S = S + initial_state.double()
    o = torch.zeros(B, T, H, V, dtype=torch.float64)
    for t in range(T):
        if g is not None:
            S = S * g[:, t].double().exp()[..., None]
        if gv is not None:
            S = S * gv[:, t].double().exp()[..., None, :]
        S = S + k[:, t, :, :, None] * v[:, t, :, None, :]
        o[:, t] = scale * (q[:, t, :, :, None] * S).sum(-2)
    return o, S


def inputs(B, T, H, K, V, strength=1.0, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(B, T, H, K, generator=gen, dtype=dtype) for _ in range(2))
    v = torch.randn(B, T, H, V, generator=gen, dtype=dtype)
    # logsigmoid of wide logits times `strength`: per-step log decays down to about -10 * strength.
    g = F.logsigmoid(4 * torch.randn(B, T, H, K, generator=gen, dtype=dtype)) * strength
    gv = F.logsigmoid(4 * torch.randn(B, T, H, V, generator=gen, dtype=dtype)) * strength
    h0 = torch.randn(B, H, K, V, generator=gen, dtype=dtype)
    return q, k, v, g, gv, h0


@pytest.mark.parametrize("T", [1, 17, 63, 130], ids=lambda t: f"T{t}")
def test_matches_fla_naive_recurrent_gla(T):
    from fla.ops.gla.naive import naive_recurrent_gla

    q, k, v, g, _, h0 = inputs(2, T, 2, 32, 24)
    o, state = gla_chunk(q, k, v, g, initial_state=h0)
    o_ref, state_ref = naive_recurrent_gla(q, k, v, g, initial_state=h0, output_final_state=True)
    # fp32 against fp32, unit-scale inputs: 1e-4 absolute.
    torch.testing.assert_close(o, o_ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(state, state_ref, atol=1e-4, rtol=0)


def test_per_head_decay_matches_fla_naive_with_broadcast_gate():
    """RetNet's case: one log decay per head, here also constant in time."""
    from fla.ops.gla.naive import naive_recurrent_gla

    q, k, v, _, _, _ = inputs(1, 77, 3, 16, 20)
    gamma = torch.tensor([1 / 32, 1 / 128, 1 / 512])
    g = torch.log1p(-gamma).view(1, 1, 3, 1).expand(1, 77, 3, 1)
    o, state = gla_chunk(q, k, v, g)
    o_ref, state_ref = naive_recurrent_gla(q, k, v, g.expand(1, 77, 3, 16), output_final_state=True)
    torch.testing.assert_close(o, o_ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(state, state_ref, atol=1e-4, rtol=0)


DECAYS = {
    "gk": (True, False, False),
    "gv": (False, True, False),
    "gk-gv": (True, True, False),
    "per-head": (False, False, True),
    "per-head-gv": (False, True, True),
    "none": (False, False, False),
}


@pytest.fixture
def factor_decisions(monkeypatch):
    """Records which chunks took the factorized path (True) or the stable sub-chunk path (False)."""
    import mixers.cores.chunkwise_gla as core

    seen: list[bool] = []
    original = core._factorable

    def spy(G):
        seen.append(original(G))
        return seen[-1]

    monkeypatch.setattr(core, "_factorable", spy)
    return seen


@pytest.mark.parametrize("T", [1, 16, 63, 130], ids=lambda t: f"T{t}")
@pytest.mark.parametrize("decay", list(DECAYS), ids=str)
@pytest.mark.parametrize("strength", [0.05, 1.0, 12.0], ids=["weak", "mild", "strong"])
def test_matches_step_by_step_fp64(decay, strength, T, factor_decisions):
    """Weak decays take the factorized path; mild and strong ones (per-step log decays to about
    -10 and -120; a 64-chunk's cumulative decay then reaches the hundreds or thousands, where
    exp(-G) overflows even fp64) take the stable sub-chunk path. Both must be exact."""
    use_g, use_gv, per_head = DECAYS[decay]
    q, k, v, g, gv, h0 = inputs(2, T, 2, 20, 12, strength=strength, dtype=torch.float64)
    g = (g[..., :1] if per_head else g) if (use_g or per_head) else None
    gv = gv if use_gv else None
    o, state = gla_chunk(q, k, v, g, gv, scale=0.3, initial_state=h0)
    o_ref, state_ref = step_by_step(q, k, v, g, gv, scale=0.3, initial_state=h0)
    if T >= 16 and strength != 1.0 and factor_decisions:
        assert set(factor_decisions) == {strength < 1}
    assert torch.isfinite(o).all()
    # fp64 throughout: 1e-10 absolute.
    torch.testing.assert_close(o, o_ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(state, state_ref, atol=1e-10, rtol=0)


def test_mixed_decays_fp32_finite_and_close(factor_decisions):
    q, k, v, g, gv, h0 = inputs(1, 130, 2, 32, 16, strength=30.0)
    # The middle chunk decays weakly: the two paths meet inside one sequence.
    g[:, 64:128] *= 1e-3
    gv[:, 64:128] *= 1e-3
    o, state = gla_chunk(q, k, v, g, gv, initial_state=h0)
    o_ref, state_ref = step_by_step(q, k, v, g, gv, initial_state=h0)
    assert torch.isfinite(o).all() and torch.isfinite(state).all()
    # Per-step log decays down to -300 put a chunk's cumulative decay near -1e3, and a difference
    # of two fp32 cumulative sums is then good to ~1e-7 * 1e3 = 1e-4 relative: 1e-3 absolute
    # on outputs of size ~5. Mild decays (the fla comparison above) hold 1e-4.
    torch.testing.assert_close(o.double(), o_ref, atol=1e-3, rtol=0)
    torch.testing.assert_close(state.double(), state_ref, atol=1e-4, rtol=0)
    assert True in factor_decisions and False in factor_decisions


@pytest.mark.parametrize("cuts", [(1,), (40,), (64, 65), (13, 77, 100)], ids=lambda c: "cut" + "-".join(map(str, c)))
def test_segments_with_carried_state_equal_one_pass(cuts):
    q, k, v, g, gv, h0 = inputs(2, 131, 2, 24, 16, strength=3.0, dtype=torch.float64)
    o_full, state_full = gla_chunk(q, k, v, g, gv, initial_state=h0)
    pieces, state = [], h0
    for a, b in zip((0, *cuts), (*cuts, 131), strict=True):
        o, state = gla_chunk(q[:, a:b], k[:, a:b], v[:, a:b], g[:, a:b], gv[:, a:b], initial_state=state)
        pieces.append(o)
    torch.testing.assert_close(torch.cat(pieces, 1), o_full, atol=1e-10, rtol=0)
    torch.testing.assert_close(state, state_full, atol=1e-10, rtol=0)


@pytest.mark.parametrize("T, chunk_size", [(700, 64), (600, 16)], ids=["T700-C64", "T600-C16"])
@pytest.mark.parametrize("strength", [0.05, 12.0], ids=["weak", "strong"])
def test_several_blocks_of_chunks(T, chunk_size, strength):
    """Chunks are processed in blocks of BLOCK_CHUNKS; the state must cross block boundaries."""
    q, k, v, g, gv, h0 = inputs(1, T, 2, 8, 6, strength=strength, dtype=torch.float64)
    o, state = gla_chunk(q, k, v, g, gv, initial_state=h0, chunk_size=chunk_size)
    o_ref, state_ref = step_by_step(q, k, v, g, gv, initial_state=h0)
    torch.testing.assert_close(o, o_ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(state, state_ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_without_autograd_same_result_and_initial_state_untouched(mode):
    """Without autograd the state is updated in place: it must be a private copy."""
    q, k, v, g, gv, h0 = inputs(2, 150, 2, 16, 8, strength=0.5)
    expected = gla_chunk(q, k, v, g, gv, initial_state=h0)
    h0_before = h0.clone()
    with getattr(torch, mode)():
        o, state = gla_chunk(q, k, v, g, gv, initial_state=h0)
    torch.testing.assert_close(o, expected[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(state, expected[1], atol=1e-6, rtol=0)
    assert torch.equal(h0, h0_before)


@pytest.mark.parametrize("chunk_size", [16, 32, 128], ids=lambda c: f"C{c}")
def test_chunk_size_does_not_change_result(chunk_size):
    q, k, v, g, gv, _ = inputs(1, 100, 2, 16, 8, strength=2.0, dtype=torch.float64)
    o_ref, _ = step_by_step(q, k, v, g, gv)
    o, _ = gla_chunk(q, k, v, g, gv, chunk_size=chunk_size)
    torch.testing.assert_close(o, o_ref, atol=1e-10, rtol=0)


def test_bf16_inputs_accumulate_in_fp32():
    q, k, v, g, gv, h0 = inputs(1, 99, 2, 32, 16, strength=1.0, dtype=torch.bfloat16)
    o, state = gla_chunk(q, k, v, g, gv, initial_state=h0)
    assert o.dtype == torch.bfloat16 and state.dtype == torch.float32
    o_ref, state_ref = step_by_step(q, k, v, g, gv, initial_state=h0)
    # The only bf16 rounding is the output's (8 bits of mantissa): 1e-2 relative to its scale.
    # The fp32 state sees the same rounded inputs as the reference: 1e-4 absolute.
    assert (o.double() - o_ref).abs().max() <= 1e-2 * o_ref.abs().max()
    torch.testing.assert_close(state.double(), state_ref, atol=1e-4, rtol=0)


def test_gradients_match_finite_differences():
    # Two chunks of 32 (two sub-chunks each, so every code path is differentiated).
    q, k, v, g, gv, h0 = inputs(1, 35, 1, 3, 2, strength=2.0, dtype=torch.float64)
    args = [x.requires_grad_() for x in (q, k, v, g, gv, h0)]

    def fn(q, k, v, g, gv, h0):
        return gla_chunk(q, k, v, g, gv, initial_state=h0, chunk_size=32)

    assert torch.autograd.gradcheck(fn, args, atol=1e-7, fast_mode=True)


def test_rejects_bad_shapes():
    q, k, v, g, gv, h0 = inputs(1, 8, 2, 4, 3)
    with pytest.raises(ValueError, match="g must be"):
        gla_chunk(q, k, v, g[..., :2])
    with pytest.raises(ValueError, match="gv must be"):
        gla_chunk(q, k, v, None, g)
    with pytest.raises(ValueError, match="initial_state"):
        gla_chunk(q, k, v, initial_state=h0[:, :1])
    with pytest.raises(ValueError, match="chunk_size"):
        gla_chunk(q, k, v, chunk_size=24)


@pytest.mark.parametrize("K, V, decay", [(128, 256, "key"), (64, 256, "key"), (256, 64, "value"),
                                         (64, 256, "value"), (256, 512, "head")],
                         ids=lambda x: str(x))
def test_scratch_model_matches_measured_peak(K, V, decay):
    """The cost models of the twins count on scratch_bytes; the CPU probe checks it (15%)."""
    q, k, v, g, gv, _ = inputs(1, 1024, 4, K, V, strength=0.01)
    g = {"key": g, "value": None, "head": g[..., :1]}[decay]
    gv = gv if decay == "value" else None
    with torch.inference_mode():
        measured = peak_memory(lambda: gla_chunk(q, k, v, g, gv), "cpu").above_bytes - v.nbytes
    assert scratch_bytes(1, 4, K, V, decay=decay) == pytest.approx(measured, rel=0.15)
