"""GSA's two gated-linear-attention passes fused chunk by chunk, for inference (no autograd).

Gated Slot Attention (Zhang et al., 2024) runs two GLA recurrences over the same slot gates
f_t = log decays [M] and slot writes s_t [M] (see ``mixers.gsa``):

    pass 1 (value decay):  K_t = K_{t-1} diag(exp f_t) + k_t s_t^T,   a_t = scale K_t^T q_t   [K, M]
    pass 2 (key decay):    V_t = diag(exp f_t) V_{t-1} + s_t v_t^T,    o_t = V_t^T softmax(a_t)  [M, V]

Within a chunk of C steps, with G_i the cumulative log decay from the chunk's start (inclusive),
E_i = exp(G_i) and W_j = s_j exp(-G_j) (the slot writes decayed back to the chunk's start),
both passes factorize through the same two tensors:

    a_i = scale E_i * (q_i K_0 + sum_{j<=i} (q_i . k_j) W_j)            K_C = (K_0 + k^T W) diag(E_C)
    o_i = (p_i E_i) V_0 + sum_{j<=i} ((p_i E_i) . W_j) v_j,  p_i = softmax(a_i)    V_C = diag(E_C) (V_0 + W^T v)

so a chunk costs one cumulative sum, one exp and one division for both passes (made for a
block of BLOCK_CHUNKS chunks at once), and every product is a batched matmul over (batch x
heads) read straight from the inputs' [B, T, H, *] layout (no head-major copies for batch 1).
Both passes run chunk by chunk, so the second pass reads the first's softmax while it is still
in cache, and the scratch is one block's worth whatever T is. About 85% of the time is the
chunks' matmuls: per token and head, 4 K M (state reads and updates) + 2 C (K + M) (within the
chunk) FLOPs per pass.

The factorization needs exp(-G) finite: a chunk whose cumulative decay reaches below
-FACTOR_LIMIT (60) on any slot is instead handed to ``mixers.cores.chunkwise_gla`` (both passes, carrying
the states), whose stable sub-chunk path handles decay spreads of hundreds or more.

All arithmetic is fp32 (fp64 inputs stay fp64); in-place updates, so autograd is not supported
(``mixers.gsa.slot_attention`` takes the two-pass ``gla_chunk`` route when gradients are needed).
"""

from __future__ import annotations

import torch

from mixers.cores.chunkwise_gla import gla_chunk
from mixers.cores.cumsum import blocked_cumsum

CHUNK = 32
"""Default rows per chunk: the intra-chunk work (2 C (K + M) per token and pass) against the
per-chunk calls; 32 is ~4% faster than 64 at 4,999 frames (K = M = V = 256, one or two threads)."""
BLOCK_CHUNKS = 8
"""Chunks whose decays (cumulative sum, exp, division) are made together."""
FACTOR_LIMIT = 60.0
"""Largest -G (cumulative log decay within one chunk) the factorized form takes: exp(60) ~ 1e26,
far from fp32's overflow at exp(88)."""


def fused_slot_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, s: torch.Tensor, g: torch.Tensor,
                         scale: float = 1.0, initial_state: tuple[torch.Tensor, torch.Tensor] | None = None,
                         chunk_size: int = CHUNK) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """GSA's core without autograd: q, k [B, T, H, K]; v [B, T, H, V]; s, g [B, T, H, M].

    ``initial_state`` is ``(hk [B, H, K, M], hv [B, H, M, V])``. Returns
    ``(o [B, T, H, V] in v's dtype, (hk, hv))`` with fp32 states (fp64 for fp64 inputs).
    """
    if torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v, s, g)):
        raise ValueError("fused_slot_attention has no backward; use mixers.gsa.slot_attention for training")
    _check(q, k, v, s, g, initial_state, chunk_size)
    B, T, H, K = q.shape
    M, V = s.shape[-1], v.shape[-1]
    work = torch.promote_types(q.dtype, torch.float32)
    # [T, B H, *] views (copies only for batch > 1 or a dtype change).
    rows = tuple(_rows(x, work) for x in (q, k, v, s, g))
    hk, hv = _initial(initial_state, B, H, K, M, V, q.device, work)
    o = v.new_empty(B, T, H, V)
    o3 = _rows(o, work) if B == 1 and o.dtype == work else torch.empty(T, B * H, V, dtype=work, device=o.device)
    with torch.no_grad():
        _scan(*rows, hk, hv, o3, scale, chunk_size)
    if o3.data_ptr() != o.data_ptr():
        o.copy_(o3.view(T, B, H, V).transpose(0, 1))
    return o, (hk.view(B, H, K, M), hv.view(B, H, M, V))


def _scan(q, k, v, s, g, hk, hv, o, scale: float, C: int) -> None:
    """Both passes over every chunk of one group of heads: inputs [T, h, *] (time-major), states
    hk [h, K, M] and hv [h, M, V] and the output o [T, h, V] updated in place."""
    T = s.shape[0]
    tril = torch.ones(C, C, dtype=hk.dtype, device=hk.device).tril()
    upper = tril == 0
    # Every chunk's operands as views made in one go (a per-chunk slice and transpose each would
    # cost more Python than some of the chunk's kernels): [h, c, *], keys also as [h, K, c].
    chunks = zip(*(x.transpose(0, 1).split(C, 1) for x in (q, v, o)), k.permute(1, 2, 0).split(C, 2), strict=True)
    span = C * BLOCK_CHUNKS
    for b0 in range(0, T, span):
        _block(q, k, v, s, g, hk, hv, o, scale, tril, upper, chunks, b0, min(b0 + span, T))


def _block(q, k, v, s, g, hk, hv, o, scale: float, tril, upper, chunks, b0: int, b1: int) -> None:
    """Rows b0..b1 of the group: the block's decays at once, then chunk by chunk (its E and W
    are freed on return, before the next block's are made)."""
    C = tril.shape[0]
    E, W, strong = _decays(g[b0:b1], s[b0:b1], tril)
    # zip meets the end of the block's rows first, so it draws no chunk of the next block.
    for r0, En, Wn, stable, (qn, vn, on, knT) in zip(range(b0, b1, C), E.split(C, 1), W.split(C, 1), strong,
                                                     chunks, strict=False):
        c = En.shape[1]
        if stable:
            _stable_chunk(q, k, v, s, g, scale, hk, hv, o, r0, r0 + c)
        else:
            _chunk(qn, knT, vn, En, Wn, hk, hv, on, scale, upper[:c, :c])


def _chunk(q, kT, v, E, W, hk, hv, o, scale: float, upper: torch.Tensor) -> None:
    """Both passes over one chunk of c rows: q [h, c, K], kT [h, K, c], v [h, c, V], E and W
    [h, c, M]; the states hk [h, K, M], hv [h, M, V] and o [h, c, V] are updated in place."""
    last = E[:, -1:]  # [h, 1, M]: the chunk's whole decay
    # Pass 1: slot scores a = scale E * (q K_0 + tril(q k^T) W).  [h, c, M]
    A = torch.bmm(q, kT).masked_fill_(upper, 0.0)
    a = torch.bmm(A, W).baddbmm_(q, hk).mul_(E)
    if scale != 1.0:
        a.mul_(scale)
    hk.baddbmm_(kT, W).mul_(last)
    # Pass 2 with the slot probabilities decayed to each row: pe = softmax(a) E.  [h, c, M]
    pe = torch.softmax(a, -1).mul_(E)
    WT = W.transpose(1, 2)
    A = torch.bmm(pe, WT).masked_fill_(upper, 0.0)
    # Into a contiguous block first: baddbmm_ on a strided output splits into one call per head.
    o.copy_(torch.bmm(A, v).baddbmm_(pe, hv))
    hv.baddbmm_(WT, v).mul_(last.transpose(1, 2))


def _decays(g: torch.Tensor, s: torch.Tensor, tril: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[bool]]:
    """A block of chunks' E = exp(G) and W = s exp(-G) ([h, L, M], G the cumulative log decay
    within each chunk of C = len(tril) rows) from g, s [L, h, M], and which chunks decay too
    strongly for them (some G below -FACTOR_LIMIT)."""
    L, _, M = g.shape
    C = tril.shape[0]
    G = blocked_cumsum(g.flatten(1), 0, period=C).view(L, -1, M).transpose(0, 1)  # [h, L, M]
    ends = list(range(C - 1, L, C)) + ([L - 1] if L % C else [])
    strong = (G[:, ends].amin((0, 2)) < -FACTOR_LIMIT).tolist()
    E = G.exp_()  # exp(G_i) <= 1
    return E, torch.div(s.transpose(0, 1), E), strong  # s_j exp(-G_j) < exp(FACTOR_LIMIT)


def _rows(x: torch.Tensor, work: torch.dtype) -> torch.Tensor:
    """[B, T, H, X] -> [T, B H, X], time-major: a view for batch 1, else one copy. A chunk's
    rows are then one contiguous block, and its [B H, C, X] transpose a valid bmm operand."""
    B, T, H, X = x.shape
    return x.to(work).transpose(0, 1).reshape(T, B * H, X)


def _initial(initial_state, B, H, K, M, V, device, work) -> tuple[torch.Tensor, torch.Tensor]:
    """Private fp32 copies of the states (updated in place), [B H, K, M] and [B H, M, V]."""
    if initial_state is None:
        return torch.zeros(B * H, K, M, dtype=work, device=device), torch.zeros(B * H, M, V, dtype=work, device=device)
    hk, hv = initial_state
    return hk.to(work, copy=True).reshape(B * H, K, M), hv.to(work, copy=True).reshape(B * H, M, V)


def _stable_chunk(q, k, v, s, g, scale, hk, hv, o, r0, r1) -> None:
    """One chunk with a strong decay, both passes by ``gla_chunk`` (stable sub-chunk path); the
    group's heads [T, h, *] are the heads of a batch of one."""
    t = slice(r0, r1)
    a, hk_new = gla_chunk(q[t][None], k[t][None], s[t][None], gv=g[t][None], scale=scale, initial_state=hk[None])
    p = a.softmax(-1, dtype=hk.dtype)
    out, hv_new = gla_chunk(p, s[t][None], v[t][None], g[t][None], scale=1.0, initial_state=hv[None])
    o[t] = out[0]
    hk.copy_(hk_new[0])
    hv.copy_(hv_new[0])


def scratch_bytes(batch: int, num_heads: int, key_dim: int, num_slots: int, value_dim: int, length: int,
                  chunk_size: int = CHUNK, dtype_bytes: int = 4) -> int:
    """About the peak bytes ``fused_slot_attention`` holds beside its inputs and output, for cost models.

    The two fp32 states; one block's E and W ([B H, L, M] each, L = BLOCK_CHUNKS * C rows); for
    the chunk in flight about three [B H, C, M]-wide, one V-wide and two [C, C] tensors (slot
    scores and probabilities, the output block, the intra-chunk scores); and, unless batch is 1
    and the inputs fp32, the time-major fp32 copies of the five inputs and an output buffer.
    Within 15% of the measured peak on one thread (tests/mixers/test_gsa_chunk.py).
    """
    B, H, K, M, V, C = batch, num_heads, key_dim, num_slots, value_dim, chunk_size
    L = min(length, BLOCK_CHUNKS * C)
    states = 4 * B * H * (K * M + M * V)
    chunk = 4 * B * H * (2 * L * M + C * (3 * M + V + 2 * C))
    copies = 0 if B == 1 and dtype_bytes == 4 else 4 * B * length * H * (2 * K + 2 * M + 2 * V)
    return states + chunk + copies


def _check(q, k, v, s, g, initial_state, chunk_size: int) -> None:
    B, T, H, K = q.shape
    V, M = v.shape[-1], s.shape[-1]
    if T < 1:
        raise ValueError(f"fused_slot_attention needs at least one time step, got q of shape {tuple(q.shape)}")
    expected = {"k": (k, (B, T, H, K)), "v": (v, (B, T, H, V)), "g": (g, (B, T, H, M))}
    if initial_state is not None:
        expected.update(hk=(initial_state[0], (B, H, K, M)), hv=(initial_state[1], (B, H, M, V)))
    for name, (x, shape) in expected.items():
        if tuple(x.shape) != shape:
            raise ValueError(f"{name} must be {shape} for q {tuple(q.shape)} and s {tuple(s.shape)}; "
                             f"got {tuple(x.shape)}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of steps, got {chunk_size}")
