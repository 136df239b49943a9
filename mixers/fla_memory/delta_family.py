"""Activation peaks of fla 0.6's delta-rule layers (KDA, DeltaNet, Gated DeltaNet, RWKV-7) at
inference, replayed from their forwards (``fla/layers/<name>.py``, ``ops/<op>/chunk*.py``,
``wy_fast*.py``, ``ops/common/chunk_delta_h.py``, ``chunk_o.py``) in chunk mode.

Each runs the WY representation then ``chunk_gated_delta_rule_fwd_h``: the within-chunk blocks
``[B, T, H, 64]``, the pseudo-keys and -values ``w``, ``u``, the per-chunk states ``[K, V]`` and
the corrected values ``v_new`` are all alive while the output is made. At T <= 64 (KDA, Gated
DeltaNet in eval under no_grad; RWKV-7 below 64) fla runs ``fused_recurrent``: these figures bound
it above. Sizes in bytes; ``e`` is the input's element size, fla's fp32 scratch says 4.
"""

from __future__ import annotations

from mixers.fla_memory.timeline import CHUNK, Timeline, chunk_states


def _delta_core(t: Timeline, B: int, T: int, H: int, K: int, V: int, e: int) -> None:
    """``chunk_gated_delta_rule_fwd_h`` then ``chunk_fwd_o``: states, ``v_new``, the output."""
    t.alloc(h=chunk_states(B, T, H, K, V, e), v_new=B * T * H * V * e, o=B * T * H * V * e)


def kda(B: int, T: int, D: int, H: int, e: int, head_dim: int = 128, expand_v: float = 1.0, **_: object) -> int:
    """``KimiDeltaAttention``: q, k, v each through its short convolution (the projection freed
    after), the low-rank decay (``f_proj``) and beta; l2-normed q, k; the fp32 cumulative decay
    ``[B, T, H, K]`` (``ops/kda/gate.py``); the intra-chunk blocks Aqk, Akk (dtype) and Akk's
    fp32 diagonal 16 x 16 blocks; w, u, kg (``ops/kda/wy_fast.py``; no qg at inference); the core; then the
    low-rank output gate, the fused norm-gate and o_proj.
    H200, fp32, 10-400 s: within 3% of the measured peaks."""
    K, V = head_dim, int(head_dim * expand_v)
    KD, VD, tok = H * K, H * V, B * T
    t = Timeline()
    for name, width in (("q", KD), ("k", KD), ("v", VD)):
        t.alloc(**{f"{name}_proj": tok * width * e, name: tok * width * e}).free(f"{name}_proj")
    t.alloc(f_low=tok * V * e, f=tok * KD * e).free("f_low")
    t.alloc(beta=tok * H * e, q_norm=tok * KD * e, k_norm=tok * KD * e, g_cum=tok * KD * 4,
            Aqk=tok * H * CHUNK * e, Akk=tok * H * CHUNK * e, Akk_diag=tok * H * 16 * 4,
            w=tok * KD * e, u=tok * VD * e, kg=tok * KD * e).free("Akk_diag")
    _delta_core(t, B, T, H, K, V, e)
    t.free("w", "u", "kg", "v_new", "h", "g_cum", "Akk", "Aqk", "q_norm", "k_norm")
    t.alloc(g_low=tok * V * e, g=tok * VD * e).free("g_low").alloc(normed=tok * VD * e).free("g", "o")
    t.alloc(out=tok * D * e)
    return t.peak


def deltanet(B: int, T: int, D: int, H: int, e: int, expand_k: float = 1.0, expand_v: float = 1.0,
             **_: object) -> int:
    """``DeltaNet``: q, k, v through short convolutions, l2-normed q, k, the fp32 k k^T blocks
    (``chunk_scaled_dot_kkt``) then their inverse in dtype (``solve_tril``), w, u, the core; then
    the RMS norm and o_proj. fla 0.6 refuses fp32 here (its chunk op asserts bf16 / fp16), so at
    fp32 the cell errors and this figure is what bf16's timeline would hold at 4-byte elements.
    No GPU row yet: checked on CPU only."""
    KD, VD, tok = round(D * expand_k), round(D * expand_v), B * T
    t = Timeline()
    for name, width in (("q", KD), ("k", KD), ("v", VD)):
        t.alloc(**{f"{name}_proj": tok * width * e, name: tok * width * e}).free(f"{name}_proj")
    t.alloc(q_norm=tok * KD * e, k_norm=tok * KD * e, A=tok * H * CHUNK * 4, A_inv=tok * H * CHUNK * e).free("A")
    t.alloc(w=tok * KD * e, u=tok * VD * e)
    _delta_core(t, B, T, H, KD // H, VD // H, e)
    t.free("w", "u", "h", "v_new", "A_inv", "q_norm", "k_norm")
    t.alloc(normed=tok * VD * e).free("o").alloc(out=tok * D * e)
    return t.peak


def gated_deltanet(B: int, T: int, D: int, H: int, e: int, head_dim: int = 256, expand_v: float = 2.0,
                   **_: object) -> int:
    """``GatedDeltaNet``: q, k, v projected and concatenated for one fused short convolution; the
    core's input guard copies q, k, v out of it (they are strided views); l2-normed q, k, the
    within-chunk blocks (dtype), w, u, the core; then the output gate, the fused norm-gate, o_proj.
    No GPU row yet: checked on CPU only."""
    K, V = head_dim, int(head_dim * expand_v)
    KD, VD, tok = H * K, H * V, B * T
    width = 2 * KD + VD
    t = Timeline().alloc(q_proj=tok * KD * e, k_proj=tok * KD * e, v_proj=tok * VD * e, qkv=tok * width * e)
    t.free("q_proj", "k_proj", "v_proj").alloc(conv=tok * width * e).free("qkv")
    t.alloc(q=tok * KD * e, k=tok * KD * e, v=tok * VD * e, q_norm=tok * KD * e, k_norm=tok * KD * e,
            A=tok * H * CHUNK * e, w=tok * KD * e, u=tok * VD * e)
    _delta_core(t, B, T, H, K, V, e)
    t.free("w", "u", "h", "v_new", "q", "k", "A", "v", "q_norm", "k_norm")
    t.alloc(g=tok * VD * e, normed=tok * VD * e).free("o").alloc(out=tok * D * e)
    return t.peak


def rwkv7(B: int, T: int, D: int, H: int, e: int, low_rank: tuple[int, int, int] = (0, 0, 0), **_: object) -> int:
    """``RWKV7Attention`` (first layer): the token shift and six lerped inputs; r, the decay LoRA
    (tanh, sigmoid, scale), k, v, the a and g LoRAs, kk = l2norm(k k_k), the updated k; then
    ``chunk_rwkv7`` with a = -kk and b = kk a: two fp32 cumulative decays (``ops/rwkv6/chunk.py``),
    four within-chunk blocks (two in dtype, two fp32), four gated q/k/a/b copies, the fp32 inverse,
    w, u, the states ``[K, V]``, ``v_new`` and the output; then the group norm, the bonus-and-gate
    correction and o_proj. ``low_rank``: the (decay, gate, a) LoRA widths, only transient here.
    No GPU row yet: checked on CPU only."""
    K, tok = D // H, B * T
    r_w, r_g, r_a = low_rank
    t = Timeline().alloc(delta=tok * D * e, **{f"x{n}": tok * D * e for n in "rwkvag"}, r=tok * D * e)
    t.alloc(w_low=tok * r_w * e, w_tanh=tok * r_w * e).free("w_low").alloc(w_up=tok * D * e).free("w_tanh")
    t.alloc(w_sig=tok * D * e).free("w_up").alloc(w=tok * D * e).free("w_sig")
    t.alloc(k=tok * D * e, v=tok * D * e, a_low=tok * r_a * e, a_up=tok * D * e).free("a_low")
    t.alloc(a=tok * D * e).free("a_up")
    t.alloc(g_low=tok * r_g * e, g_sig=tok * r_g * e).free("g_low").alloc(g=tok * D * e).free("g_sig")
    t.alloc(kk_raw=tok * D * e, kk=tok * D * e).free("kk_raw").alloc(k_new=tok * D * e).free("k")
    t.alloc(a_neg=tok * D * e, b=tok * D * e, gi=tok * D * 4, ge=tok * D * 4,
            A_qk=tok * H * CHUNK * e, A_qb=tok * H * CHUNK * e, A_ak=tok * H * CHUNK * 4, A_ab=tok * H * CHUNK * 4,
            qg=tok * D * e, kg=tok * D * e, ag=tok * D * e, bg=tok * D * e, A_inv=tok * H * CHUNK * 4,
            w_wy=tok * D * e, u=tok * D * e)
    _delta_core(t, B, T, H, K, K, e)
    t.free("gi", "ge", "A_ak", "A_qk", "A_ab", "A_qb", "qg", "kg", "ag", "bg", "w_wy", "u", "A_inv", "h", "v_new",
           "a_neg", "b")
    t.alloc(normed=tok * D * e).free("o").alloc(corrected=tok * D * e).free("normed").alloc(out=tok * D * e)
    return t.peak
