"""The fused GSA core (mixers.cores.fused_gsa) against the paper's recurrence and fla's naive_recurrent_gsa."""

from __future__ import annotations

import pytest
import torch

from bench.memory import peak_memory
from mixers.cores.fused_gsa import CHUNK, fused_slot_attention, scratch_bytes
from mixers.gsa import slot_attention
from tests.mixers.test_gsa import core_inputs, paper_recurrence


@pytest.fixture
def stable_chunks(monkeypatch):
    """Records the start row of every chunk handed to the stable gla_chunk path."""
    import mixers.cores.fused_gsa as core

    seen: list[int] = []
    original = core._stable_chunk

    def spy(*args):
        seen.append(args[-2])
        return original(*args)

    monkeypatch.setattr(core, "_stable_chunk", spy)
    return seen


@pytest.mark.parametrize("B", [1, 2], ids=lambda b: f"B{b}")
@pytest.mark.parametrize("T", [1, 63, 64, 130], ids=lambda t: f"T{t}")
@pytest.mark.parametrize("gate_scale", [1.0, 2000.0], ids=["unit", "gates2000"])
def test_matches_paper_recurrence_fp64(B, T, gate_scale, stable_chunks):
    """Unit gate logits keep every chunk's cumulative decay far above -60: the fused path. Logits
    of thousands (per-step log decays of hundreds) send every chunk to the stable path."""
    q, k, v, s, g, h0 = core_inputs(T, gate_scale=gate_scale, dtype=torch.float64, B=B)
    with torch.no_grad():
        o, (hk, hv) = fused_slot_attention(q, k, v, s, g, scale=0.7, initial_state=h0)
    o_ref, (hk_ref, hv_ref) = paper_recurrence(q, k, v, s, g, 0.7, h0)
    assert set(stable_chunks) == (set() if gate_scale == 1.0 else set(range(0, T, CHUNK)))
    # fp64 throughout: 1e-10 absolute.
    torch.testing.assert_close(o, o_ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(hk, hk_ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(hv, hv_ref, atol=1e-10, rtol=0)


def test_fused_and_stable_chunks_meet_in_one_sequence(stable_chunks):
    q, k, v, s, g, h0 = core_inputs(200, dtype=torch.float64, B=1)
    # Rows 64..127 decay strongly: cumulative log decays far below -60 in each of their chunks.
    g[:, 64:128] *= 300
    s = 1 - g.exp()
    with torch.no_grad():
        o, (hk, hv) = fused_slot_attention(q, k, v, s, g, initial_state=h0)
    o_ref, (hk_ref, hv_ref) = paper_recurrence(q, k, v, s, g, 1.0, h0)
    assert set(stable_chunks) == set(range(64, 128, CHUNK))
    torch.testing.assert_close(o, o_ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(hk, hk_ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(hv, hv_ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize("B, T", [(1, 200), (3, 77)], ids=["B1-T200", "B3-T77"])
def test_matches_fla_naive_recurrent_gsa_fp32(B, T):
    from fla.ops.gsa.naive import naive_recurrent_gsa

    q, k, v, s, g, h0 = core_inputs(T, B=B, K=40, M=36, V=28)
    with torch.inference_mode():
        o, (hk, hv) = fused_slot_attention(q, k, v, s, g, initial_state=h0)
        o_ref, (hk_ref, hv_ref) = naive_recurrent_gsa(q, k, v, s, g, scale=1.0, initial_state=h0,
                                                      output_final_state=True)
    # fp32 against fp32 at unit-scale inputs: 1e-4 absolute.
    torch.testing.assert_close(o, o_ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(hk, hk_ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(hv, hv_ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("chunk_size", [16, 32, 128], ids=lambda c: f"C{c}")
def test_chunk_size_and_segments_do_not_change_result(chunk_size):
    q, k, v, s, g, h0 = core_inputs(150, gate_scale=3.0, dtype=torch.float64)
    o_ref, (hk_ref, hv_ref) = paper_recurrence(q, k, v, s, g, 1.0, h0)
    pieces, state = [], h0
    with torch.no_grad():
        for a, b in ((0, 40), (40, 107), (107, 150)):
            o, state = fused_slot_attention(*(x[:, a:b] for x in (q, k, v, s, g)), initial_state=state,
                                            chunk_size=chunk_size)
            pieces.append(o)
    torch.testing.assert_close(torch.cat(pieces, 1), o_ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(state[0], hk_ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(state[1], hv_ref, atol=1e-10, rtol=0)


def test_initial_state_untouched_and_bf16_accumulates_in_fp32():
    q, k, v, s, g, h0 = core_inputs(99, B=1)
    before = tuple(h.clone() for h in h0)
    with torch.inference_mode():
        o, (hk, _) = fused_slot_attention(*(x.bfloat16() for x in (q, k, v, s, g)), initial_state=h0)
    assert all(torch.equal(h, b) for h, b in zip(h0, before, strict=True))
    assert o.dtype == torch.bfloat16 and hk.dtype == torch.float32
    o_ref, _ = paper_recurrence(*(x.bfloat16() for x in (q, k, v, s, g)), 1.0, h0)
    # Only the output is rounded to bf16 (8-bit mantissa): 1e-2 of its scale.
    assert (o.double() - o_ref).abs().max() <= 1e-2 * o_ref.abs().max()


def test_gradients_take_the_two_pass_path():
    """With gradients, slot_attention runs gla_chunk twice (autograd); the fused core refuses."""
    q, k, v, s, g, h0 = core_inputs(40, dtype=torch.float64, B=1, K=6, M=5, V=4)
    args = [x.requires_grad_() for x in (q, k, v, s, g)]
    o, _ = slot_attention(*args, scale=0.5, initial_state=h0)
    o_ref, _ = paper_recurrence(*args, 0.5, h0)
    weights = torch.randn_like(o)
    grads = torch.autograd.grad((o * weights).sum(), args)
    grads_ref = torch.autograd.grad((o_ref * weights).sum(), args)
    torch.testing.assert_close(o, o_ref, atol=1e-10, rtol=0)
    for grad, grad_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(grad, grad_ref, atol=1e-9, rtol=0)
    with pytest.raises(ValueError, match="no backward"):
        fused_slot_attention(*args)


@pytest.mark.parametrize("B, K, M, V", [(1, 256, 256, 256), (2, 64, 128, 96)], ids=lambda x: str(x))
def test_scratch_model_matches_measured_peak(B, K, M, V):
    """GSA's cost model counts on scratch_bytes; the CPU probe checks it (15%), on one thread."""
    q, k, v, s, g, _ = core_inputs(256, B=B, H=4, K=K, M=M, V=V)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            measured = peak_memory(lambda: fused_slot_attention(q, k, v, s, g), "cpu").above_bytes - v.nbytes
    finally:
        torch.set_num_threads(threads)
    assert scratch_bytes(B, 4, K, M, V, 256) == pytest.approx(measured, rel=0.15)


@pytest.mark.parametrize("threads", [1, 3], ids=lambda t: f"threads{t}")
def test_threads_match_paper_recurrence(threads, stable_chunks):
    """On one and on three intra-op threads the core is the recurrence's, a strong chunk in the
    middle taking the stable path once (for all batch x heads together); the thread count is left alone."""
    q, k, v, s, g, h0 = core_inputs(150, dtype=torch.float64, B=2)
    g[:, 64:128] *= 300
    s = 1 - g.exp()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            o, (hk, hv) = fused_slot_attention(q, k, v, s, g, initial_state=h0)
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    o_ref, (hk_ref, hv_ref) = paper_recurrence(q, k, v, s, g, 1.0, h0)
    assert sorted(stable_chunks) == list(range(64, 128, CHUNK))
    torch.testing.assert_close(o, o_ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(hk, hk_ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(hv, hv_ref, atol=1e-10, rtol=0)


def test_rejects_bad_shapes():
    q, k, v, s, g, h0 = core_inputs(8, B=1)
    with torch.no_grad():
        with pytest.raises(ValueError, match="g must be"):
            fused_slot_attention(q, k, v, s, g[..., :3])
        with pytest.raises(ValueError, match="hv must be"):
            fused_slot_attention(q, k, v, s, g, initial_state=(h0[0], h0[1][..., :2]))
        with pytest.raises(ValueError, match="at least one time step"):
            fused_slot_attention(*(x[:, :0] for x in (q, k, v, s, g)))
