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

so a chunk costs one cumulative sum, one exp and one division for both passes, and every
product is a batched matmul over (batch x heads) read straight from the inputs' [B, T, H, *]
layout (no head-major copies for batch 1). Both passes run chunk by chunk, so the second pass
reads the first's softmax while it is still in cache, and the scratch is a few [B H, C, *]
tensors whatever T is.

The factorization needs exp(-G) finite: a chunk whose cumulative decay reaches below
-FACTOR_LIMIT (60) on any slot is instead handed to ``mixers.gla_chunk`` (both passes, carrying
the states), whose stable sub-chunk path handles decay spreads of hundreds or more.

All arithmetic is fp32 (fp64 inputs stay fp64); in-place updates, so autograd is not supported
(``mixers.gsa.slot_attention`` takes the two-pass ``gla_chunk`` route when gradients are needed).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch

from mixers.gla_chunk import gla_chunk

SUB = 16
"""Rows per block of the cumulative sum."""
FACTOR_LIMIT = 60.0
"""Largest -G (cumulative log decay within one chunk) the factorized form takes: exp(60) ~ 1e26,
far from fp32's overflow at exp(88)."""


def fused_slot_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, s: torch.Tensor, g: torch.Tensor,
                         scale: float = 1.0, initial_state: tuple[torch.Tensor, torch.Tensor] | None = None,
                         chunk_size: int = 64) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """GSA's core without autograd: q, k [B, T, H, K]; v [B, T, H, V]; s, g [B, T, H, M].

    ``initial_state`` is ``(hk [B, H, K, M], hv [B, H, M, V])``. Returns
    ``(o [B, T, H, V] in v's dtype, (hk, hv))`` with fp32 states (fp64 for fp64 inputs).
    """
    if torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v, s, g)):
        raise ValueError("fused_slot_attention has no backward; use mixers.gsa.slot_attention for training")
    B, T, H, K = q.shape
    M, V = s.shape[-1], v.shape[-1]
    work = torch.promote_types(q.dtype, torch.float32)
    # [T, B H, *] views (copies only for batch > 1 or a dtype change).
    rows = tuple(_rows(x, work) for x in (q, k, v, s, g))
    hk, hv = _initial(initial_state, B, H, K, M, V, q.device, work)
    o = v.new_empty(B, T, H, V)
    o3 = _rows(o, work) if B == 1 and o.dtype == work else torch.empty(T, B * H, V, dtype=work, device=o.device)
    groups = _groups(B * H, torch.get_num_threads())
    inference = torch.is_inference_mode_enabled()

    def scan(heads: slice) -> None:
        with torch.inference_mode(inference), torch.no_grad():
            _scan(*(x[:, heads] for x in rows), hk[heads], hv[heads], o3[:, heads], scale, chunk_size)

    if len(groups) == 1:
        scan(groups[0])
    else:
        _in_threads(scan, groups)
    if o3.data_ptr() != o.data_ptr():
        o.copy_(o3.view(T, B, H, V).transpose(0, 1))
    return o, (hk.view(B, H, K, M), hv.view(B, H, M, V))


def _scan(q, k, v, s, g, hk, hv, o, scale: float, C: int) -> None:
    """Both passes over every chunk of one group of heads: inputs [T, h, *] (time-major), states
    hk [h, K, M] and hv [h, M, V] and the output o [T, h, V] updated in place."""
    T, _, M = s.shape
    tril = torch.ones(C, C, dtype=hk.dtype, device=hk.device).tril()
    upper = tril == 0
    # Every chunk's operands as views made in one go (a per-chunk slice and transpose each would
    # cost more Python than some of the chunk's kernels): [h, c, *], keys also as [h, K, c].
    chunks = zip(*(x.transpose(0, 1).split(C, 1) for x in (q, v, s)), k.permute(1, 2, 0).split(C, 2),
                 g.flatten(1).split(C), o.transpose(0, 1).split(C, 1), strict=True)
    for r0, (qn, vn, sn, knT, gn, on) in zip(range(0, T, C), chunks, strict=True):
        c = gn.shape[0]
        # Cumulative log decays within the chunk.  [c, h M] -> [h, c, M]
        G = _cumsum(gn, tril[:c, :c] if c % SUB else tril[:SUB, :SUB]).view(c, -1, M).transpose(0, 1)
        if G[:, -1].min().item() < -FACTOR_LIMIT:
            _stable_chunk(q, k, v, s, g, scale, hk, hv, o, r0, r0 + c)
            continue
        E = G.exp_()  # exp(G_i) <= 1
        W = torch.div(sn, E)  # s_j exp(-G_j) < exp(FACTOR_LIMIT)
        last = E[:, -1:]  # [h, 1, M]: the chunk's whole decay
        # Pass 1: slot scores a = scale E * (q K_0 + tril(q k^T) W).  [h, c, M]
        A = torch.bmm(qn, knT).masked_fill_(upper[:c, :c], 0.0)
        a = torch.bmm(A, W).baddbmm_(qn, hk).mul_(E)
        if scale != 1.0:
            a.mul_(scale)
        hk.baddbmm_(knT, W).mul_(last)
        # Pass 2 with the slot probabilities decayed to each row: pe = softmax(a) E.  [h, c, M]
        pe = torch.softmax(a, -1).mul_(E)
        WT = W.transpose(1, 2)
        A = torch.bmm(pe, WT).masked_fill_(upper[:c, :c], 0.0)
        # Into a contiguous block first: baddbmm_ on a strided output splits into one call per head.
        on.copy_(torch.bmm(A, vn).baddbmm_(pe, hv))
        hv.baddbmm_(WT, vn).mul_(last.transpose(1, 2))


def _cumsum(x: torch.Tensor, tril: torch.Tensor) -> torch.Tensor:
    """Inclusive cumulative sum of ``x [c, N]`` over rows, as products with the lower-triangular
    matrix of ones ``tril`` (much faster than cumsum on CPU): per block of its size, then each
    block offset by the totals of the blocks before it."""
    c, b = x.shape[0], tril.shape[0]
    if b == c:
        return torch.mm(tril, x)
    blocks = torch.matmul(tril, x.view(c // b, b, -1))  # [c / b, b, N]
    blocks[1:] += blocks[:-1, -1:].cumsum(0)
    return blocks.view(c, -1)


def _groups(heads: int, threads: int) -> list[slice]:
    """Heads split into one contiguous group per intra-op thread (at most one per head)."""
    n = max(1, min(threads, heads))
    bounds = [round(i * heads / n) for i in range(n + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]


def _in_threads(scan, groups: list[slice]) -> None:
    """Each group of heads scanned by its own thread, each op on one intra-op thread: the heads
    are independent, so the threads never wait on each other inside the chunk loop (many small
    multi-threaded ops would meet at a barrier after every one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(len(groups)) as pool:
            for done in [pool.submit(scan, heads) for heads in groups]:
                done.result()
    finally:
        torch.set_num_threads(threads)


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
                  chunk_size: int = 64, dtype_bytes: int = 4) -> int:
    """About the peak bytes ``fused_slot_attention`` holds beside its inputs and output, for cost models.

    The two fp32 states, about five [B H, C, M]-wide, one V-wide and two [C, C] tensors for
    the chunks in flight (exponentials of the cumulative decays, decayed slot writes, slot
    scores and probabilities, the output block, some still held while the next chunk starts),
    and, unless batch is 1 and the inputs fp32, the time-major fp32 copies of the five inputs
    and an output buffer. Within 15% of the measured peak (tests/mixers/test_gsa_chunk.py).
    """
    B, H, K, M, V, C = batch, num_heads, key_dim, num_slots, value_dim, chunk_size
    states = 4 * B * H * (K * M + M * V)
    chunk = 4 * B * H * C * (5 * M + V + 2 * C)
    copies = 0 if B == 1 and dtype_bytes == 4 else 4 * B * length * H * (2 * K + 2 * M + 2 * V)
    return states + chunk + copies
