"""Activation peaks of fla 0.6's gated-linear-attention layers (RetNet, LightNet, GSA, GLA, HGRN2)
at inference, replayed from their forwards (``fla/layers/<name>.py``, ``ops/gla/chunk.py``,
``ops/simple_gla/chunk.py``, ``ops/common/chunk_h.py``, ``chunk_o.py``) with chunk mode (T > 64).

Every one runs ``chunk_fwd_h`` then an output stage: the per-chunk states ``[B, NT, H, K, V]`` in
the input's dtype are alive while the output is made, and at long lengths they are the largest
term (RetNet at 400 s, fp32: 313 x 4 x 256 x 512 x 4 bytes = 656 MB of its 1,095 MiB).
At T <= 64 fla switches to ``fused_recurrent`` (no chunk states): these figures bound it above.
Sizes in bytes; ``e`` is the input's element size (fp32 4, bf16 2), fla's scratch in fp32 says 4.
"""

from __future__ import annotations

from mixers.fla_memory.timeline import CHUNK, Timeline, chunk_states


def _chunk_gla(t: Timeline, B: int, T: int, H: int, K: int, V: int, e: int) -> None:
    """``chunk_gla_fwd``: the fp32 cumulative gate, the chunk states, the fp32 intra-chunk scores
    ``A [B, T, H, 64]`` and the output (``ops/gla/chunk.py``); all but the output freed after."""
    t.alloc(g_cum=B * T * H * K * 4, h=chunk_states(B, T, H, K, V, e), A=B * T * H * CHUNK * 4,
            o=B * T * H * V * e)
    t.free("h", "A", "g_cum")


def retnet(B: int, T: int, D: int, H: int, e: int, expand_k: float = 1.0, expand_v: float = 2.0) -> int:
    """``MultiScaleRetention``: q, k, v; rotary makes new q, k; ``chunk_simple_gla`` keeps the
    chunk states beside its output (no gate tensor: one decay per head); then the output gate
    projection, the fused norm-gate output, and o_proj.
    H200, fp32, 10-400 s: within 1% of the measured peaks (``tests/mixers/test_fla_memory.py``)."""
    KD, VD = int(D * expand_k), int(D * expand_v)
    tok = B * T
    t = Timeline().alloc(q=tok * KD * e, k=tok * KD * e, v=tok * VD * e, q_rot=tok * KD * e, k_rot=tok * KD * e)
    t.free("q", "k")
    t.alloc(h=chunk_states(B, T, H, KD // H, VD // H, e), o=tok * VD * e).free("h")
    t.alloc(g=tok * VD * e, normed=tok * VD * e).free("o").alloc(out=tok * D * e)
    return t.peak


def lightnet(B: int, T: int, D: int, H: int, e: int, expand_ratio: int = 128, gate_low_rank_dim: int = 128) -> int:
    """``LightNetAttention``: q, k, v (k and q H x expand_ratio wide), silu(q); the additive gate
    (``ops/gsa/gate.py``) makes normalised keys and log decays in the input's dtype; chunk GLA with
    states ``[V, K]`` per chunk and head; then the low-rank output gate, the norm and o_proj.
    H200, fp32, 10-400 s: within 3% of the measured peaks."""
    KF, R = H * expand_ratio, gate_low_rank_dim
    tok = B * T
    t = Timeline().alloc(q=tok * KF * e, k=tok * KF * e, v=tok * D * e, q_silu=tok * KF * e).free("q")
    t.alloc(k_gate=tok * KF * e, g=tok * KF * e)
    _chunk_gla(t, B, T, H, expand_ratio, D // H, e)
    t.free("k_gate", "g")
    t.alloc(g_low=tok * R * e, g_out=tok * D * e).free("g_low")
    t.alloc(normed=tok * D * e, out=tok * D * e)
    return t.peak


def gla(B: int, T: int, D: int, H: int, e: int, expand_k: float = 0.5, expand_v: float = 1.0,
        gate_low_rank_dim: int = 16) -> int:
    """``GatedLinearAttention``: q, k, v, the low-rank key gate and its logsigmoid / normaliser
    (dtype), chunk GLA, then the output gate projection, the fused norm-gate and o_proj.
    No GPU row yet (the H200 run's first call of gla did not finish): checked on CPU only."""
    KD, VD, R = round(D * expand_k), round(D * expand_v), gate_low_rank_dim
    tok = B * T
    t = Timeline().alloc(q=tok * KD * e, k=tok * KD * e, v=tok * VD * e, gk_low=tok * R * e, gk=tok * KD * e)
    t.free("gk_low").alloc(gk_log=tok * KD * e, gk_norm=tok * KD * e).free("gk_log", "gk")
    _chunk_gla(t, B, T, H, KD // H, VD // H, e)
    t.alloc(g=tok * VD * e, normed=tok * VD * e).free("o").alloc(out=tok * D * e)
    return t.peak


def hgrn2(B: int, T: int, D: int, H: int, e: int) -> int:
    """``HGRN2Attention`` (expand_ratio D / H): q, forget and input projections, swish(q), the
    forget gate's logsigmoid and 1 - exp of it as keys (dtype), chunk GLA, then the fused
    norm-linear. No GPU row yet: checked on CPU only."""
    tok, F = B * T, D // H
    t = Timeline().alloc(q=tok * D * e, f=tok * D * e, i=tok * D * e, q_act=tok * D * e).free("q")
    t.alloc(g=tok * D * e, g_exp=tok * D * e, k=tok * D * e).free("g_exp")
    _chunk_gla(t, B, T, H, F, D // H, e)
    t.alloc(normed=tok * D * e, out=tok * D * e)
    return t.peak


def gsa(B: int, T: int, D: int, H: int, e: int, num_slots: int | None = None) -> int:
    """``GatedSlotAttention``: q, k, v, f; swish(q), swish(k), silu(v), the forget gate's
    logsigmoid / 8 and 1 - exp of it (dtype); ``chunk_gsa``'s two GLA passes sharing one fp32
    cumulative gate: keys to slots (states ``[K, M]``, slot scores in dtype), the fp32 slot softmax
    (and its copy in the input's dtype below fp32), slots to values (states ``[M, V]``), both
    passes' chunk states alive at once; then silu, the fused norm-linear.
    No GPU row yet (the H200 run's first call of gsa did not finish): checked on CPU only."""
    K = V = D // H
    M = K if num_slots is None else num_slots
    tok = B * T
    t = Timeline().alloc(q=tok * D * e, k=tok * D * e, v=tok * D * e, f=tok * H * M * e,
                         q_act=tok * D * e, k_act=tok * D * e).free("q", "k")
    t.alloc(v_act=tok * D * e).free("v")
    t.alloc(f_log=tok * H * M * e, f_norm=tok * H * M * e).free("f_log", "f")
    t.alloc(f_exp=tok * H * M * e, s=tok * H * M * e).free("f_exp")
    t.alloc(g_cum=tok * H * M * 4, h_k=chunk_states(B, T, H, K, M, e), ok=tok * H * M * e,
            A_k=tok * H * CHUNK * e).free("A_k")
    t.alloc(p=tok * H * M * 4, qv=tok * H * M * e if e < 4 else 0)
    t.alloc(h_v=chunk_states(B, T, H, M, V, e), A=tok * H * CHUNK * 4, o=tok * H * V * e)
    t.free("g_cum", "h_k", "h_v", "A", "p", "qv", "ok")
    t.alloc(o_act=tok * D * e, normed=tok * D * e, out=tok * D * e)
    return t.peak
