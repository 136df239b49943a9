"""Chunkwise-parallel gated linear attention: the core shared by every GLA-family twin.

Gated Linear Attention (Yang et al., 2024, "Gated Linear Attention Transformers with
Hardware-Efficient Training") with decay on the key channels, the value channels, or both:

    S_t = diag(exp(g_t)) S_{t-1} diag(exp(gv_t)) + k_t v_t^T        S_t: [K, V]
    o_t = scale * S_t^T q_t

- ``g`` per key channel ``[B, T, H, K]`` (GLA, LightNet, GSA's second pass), or one per head
  ``[B, T, H, 1]`` (RetNet's retention: a constant log decay broadcast over time works too),
  or ``None`` (no key decay).
- ``gv`` per value channel ``[B, T, H, V]`` (GSA's first pass, whose "values" are the slots).

How it is computed. The sequence is cut into chunks of ``chunk_size`` (64), taken in blocks of
BLOCK_CHUNKS = 4: a block's intra-chunk work is batched, then a short loop over its chunks
reads and updates the fp32 state ``S`` (in place when autograd is off). Work and memory are
linear in T, and the live scratch is one block's worth. Within a chunk, with G the inclusive
cumulative log decay:

    o_i = exp(Gv_i) * (q_i exp(G_i))^T S  +  sum_{j<=i} A_ij [v_j exp(Gv_i - Gv_j)]
    A_ij = q_i^T diag(exp(G_i - G_j)) k_j

The usual trick writes exp(G_i - G_j) as exp(G_i - G_0) exp(G_0 - G_j), which turns A into
one matmul; it is used for every chunk whose decay spread (max - min of G) stays below
FACTOR_LIMIT = 60, so neither factor can overflow fp32. Chunks with stronger decay (GSA's and
LightNet's gates can reach hundreds within a chunk) take the stable sub-chunk path of
``mixers.cores.subchunk_gla`` instead. A per-head scalar decay needs neither: its [C, C] decay matrix
is exp of masked differences. All arithmetic is fp32; the output has the dtype of ``v`` (fp64
inputs are computed in fp64, for reference checks).
"""

from __future__ import annotations

import torch

from mixers.cores.subchunk_gla import SUB_CHUNK, SubChunkMasks, stable_scores, stable_values

FACTOR_LIMIT = 60.0
BLOCK_CHUNKS = 4


def gla_chunk(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None = None,
    gv: torch.Tensor | None = None,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gated linear attention over ``q, k: [B, T, H, K]``, ``v: [B, T, H, V]``.

    ``g``: log decay on key channels, ``[B, T, H, K]`` or ``[B, T, H, 1]`` (one per head), or None.
    ``gv``: log decay on value channels, ``[B, T, H, V]``, or None. Decays should be <= 0.
    ``scale`` defaults to ``K ** -0.5``; ``initial_state`` is ``[B, H, K, V]``.
    Returns ``(o [B, T, H, V] in v's dtype, final_state [B, H, K, V] in fp32, fp64 for fp64 inputs)``.
    """
    B, T, H, K = q.shape
    V = v.shape[-1]
    _check(q, k, v, g, gv, initial_state, chunk_size)
    scale = K ** -0.5 if scale is None else scale
    # Short inputs get a chunk rounded up to whole sub-chunks, not a full 64.
    C = min(chunk_size, -(-T // SUB_CHUNK) * SUB_CHUNK)
    # fp32 arithmetic for fp32/bf16/fp16 inputs; fp64 inputs stay fp64 (reference checks).
    work = torch.promote_types(q.dtype, torch.float32)
    # A private copy: the state is updated in place when autograd is off.
    if initial_state is None:
        state = q.new_zeros(B, H, K, V, dtype=work)
    else:
        state = initial_state.to(work, copy=True)
    o = v.new_empty(B, T, H, V)
    masks = _Masks(C, q.device)
    # Blocks of BLOCK_CHUNKS chunks: the intra-chunk work of a block is batched (few, large
    # operations), while its scratch stays a block's worth whatever T is.
    span = C * BLOCK_CHUNKS
    for start in range(0, T, span):
        end = min(start + span, T)
        # [B, H, N, C, *], zero-padded to whole chunks (zero keys leave S alone).
        qb, kb, vb = (_blocks(x, start, end, C, work) for x in (q, k, v))
        # Cumulative log decays within each chunk, summed in the input's layout (contiguous
        # inner dimensions: much faster than along the permuted one).
        Gb, Gvb = (None if x is None else _blocks(x, start, end, C, work, cumulative=True) for x in (g, gv))
        ob, state = _block_step(qb, kb, vb, Gb, Gvb, scale, state, masks)
        # [B, H, N, C, V] -> [B, T, H, V]
        o[:, start:end] = ob.flatten(2, 3)[:, :, : end - start].transpose(1, 2).to(o.dtype)
    return o, state


class _Masks:
    """Boolean masks for one chunk of C rows: causal [C, C], and the stable path's sub-chunk masks."""

    def __init__(self, C: int, device: torch.device):
        pos = torch.arange(C, device=device)
        self.causal = pos[:, None] >= pos[None, :]
        self.sub = SubChunkMasks(C, device)


def _blocks(x: torch.Tensor, start: int, end: int, C: int, work: torch.dtype,
            cumulative: bool = False) -> torch.Tensor:
    # [B, L, H, *] -> [B, N, C, H, *] -> [B, H, N, C, *], zero-padded to whole chunks.
    xb = x[:, start:end].to(work)
    if (end - start) % C:
        xb = torch.nn.functional.pad(xb, (0, 0, 0, 0, 0, C - (end - start) % C))
    xb = xb.unflatten(1, (-1, C))
    if cumulative:  # decays only enter elementwise products, which follow q's or v's layout
        return chunk_cumsum(xb).permute(0, 3, 1, 2, 4)
    # One copy into the head-major layout here saves the many that matmuls make of strided operands.
    return xb.permute(0, 3, 1, 2, 4).contiguous()


def chunk_cumsum(x: torch.Tensor) -> torch.Tensor:
    """Inclusive cumulative sum over dim 2 of ``x [B, N, C, *]``, as a product with a [C, C]
    lower-triangular matrix of ones: about three times faster than ``cumsum`` on CPU."""
    C = x.shape[2]
    ones = torch.ones(C, C, dtype=x.dtype, device=x.device).tril()
    return torch.matmul(ones, x.flatten(3)).view(x.shape)


def _block_step(q, k, v, G, Gv, scale, state, masks: _Masks):
    """Chunks of one block: q, k [B, H, N, C, K]; v [B, H, N, C, V]; cumulative log decays
    G [.., K|1] or None and Gv [.., V] or None."""
    N = q.shape[2]
    # Intra-chunk: every chunk of the block at once when all can be factorized, else chunk by
    # chunk, each taking the factorized or the stable path.  [B, H, N, C, V]
    per_key = G is not None and G.shape[-1] > 1
    fk = not per_key or _factorable(G)
    fv = Gv is None or _factorable(Gv)
    q_dec = k_dec = v_dec = out_dec = None
    if fk and fv:
        # One batched pass. The factorized form's decayed tensors also serve the inter-chunk
        # part: exp(G_i) = exp(G_i - G_0) exp(G_0), exp(G_C - G_j) = exp(G_0 - G_j) exp(G_C - G_0).
        if per_key:
            qe, ke, Gr = _factor(q, k, G)
            A = qe @ ke.transpose(-1, -2)  # [B, H, N, C, C]
            q_dec, k_dec = qe * (G[..., :1, :].exp() * scale), ke * Gr[..., -1:, :].exp()
            del qe, ke, Gr
        else:
            A = _scores(q, k, G, masks, True)[0]
        A = A.masked_fill(~masks.causal, 0.0) * scale
        if Gv is None:
            o = A @ v
        else:
            ve, gate, Gvr = _factor(v, None, Gv, value=True)
            o = (A @ ve) * gate
            out_dec, v_dec = gate * Gv[..., :1, :].exp(), ve * Gvr[..., -1:, :].exp()
            del ve, gate, Gvr
        del A
    else:
        o = torch.cat([
            _intra(q[:, :, n : n + 1], k[:, :, n : n + 1], v[:, :, n : n + 1],
                   None if G is None else G[:, :, n : n + 1], None if Gv is None else Gv[:, :, n : n + 1],
                   scale, masks, not per_key or _factorable(G[:, :, n]), Gv is None or _factorable(Gv[:, :, n]))
            for n in range(N)
        ], dim=2)
    # Inter-chunk: the carried state, decayed to each row, then updated chunk by chunk with the
    # chunk's keys decayed to its end. Every exponent here is <= 0 for decays <= 0.
    if q_dec is None:
        q_dec = q * scale if G is None else q * (G.exp() * scale)  # [B, H, N, C, K]
        k_dec = k if G is None else k * (G[..., -1:, :] - G).exp()
    if out_dec is None and Gv is not None:
        out_dec = Gv.exp()  # [B, H, N, C, V]
        v_dec = v * (Gv[..., -1:, :] - Gv).exp()
    v_dec = v if v_dec is None else v_dec
    decay_k = None if G is None else G[..., -1, :, None].exp()  # [B, H, N, K|1, 1]
    decay_v = None if Gv is None else Gv[..., -1, None, :].exp()  # [B, H, N, 1, V]
    del G, Gv
    grad = torch.is_grad_enabled()
    inter = []
    for n in range(N):
        # [B, H, C, V]: without autograd, added into the intra-chunk output in place.
        read = q_dec[:, :, n] @ state
        read = read if out_dec is None else read * out_dec[:, :, n]
        if grad:
            inter.append(read)
        else:
            o[:, :, n] += read
        decays = [d[:, :, n] for d in (decay_k, decay_v) if d is not None]
        state = _update(state, k_dec[:, :, n], v_dec[:, :, n], decays)
    return (o + torch.stack(inter, dim=2) if grad else o), state


def _update(state, k, v, decays):
    """S <- decay * S + k^T v for one chunk; in place when autograd is off (S is our own copy)."""
    if torch.is_grad_enabled():
        for d in decays:
            state = state * d
        return torch.baddbmm(state.flatten(0, 1), k.flatten(0, 1).transpose(-1, -2),
                             v.flatten(0, 1)).view(state.shape)
    for d in decays:
        state.mul_(d)
    state.flatten(0, 1).baddbmm_(k.flatten(0, 1).transpose(-1, -2), v.flatten(0, 1))
    return state


def _intra(q, k, v, G, Gv, scale, masks: _Masks, factor_k: bool, factor_v: bool):
    """scale * sum_{j<=i in the chunk} A_ij v_j exp(Gv_i - Gv_j), A_ij = q_i^T diag(exp(G_i - G_j)) k_j."""
    A_off, A_diag = _scores(q, k, G, masks, factor_k)
    # The scale goes on the [.., C, C] scores, not on q: no copy of q.
    A_off = A_off * scale
    A_diag = None if A_diag is None else A_diag * scale
    return _apply_values(A_off, A_diag, v, Gv, masks, factor_v)


def _factor(q, k, G, value: bool = False):
    """q exp(G - G_0), k exp(G_0 - G) and G - G_0: the factorized form (decay spread < FACTOR_LIMIT).

    With ``value``: v exp(G_0 - G), exp(G - G_0) and G - G_0 (``k`` unused), for value decays."""
    Gr = G - G[..., :1, :]
    if value:
        return q * (-Gr).exp(), Gr.exp(), Gr
    return q * Gr.exp(), k * (-Gr).exp(), Gr


def _scores(q, k, G, masks: _Masks, factor: bool):
    """Causal decayed scores of chunks ``[..., C, K]``, split by sub-chunk.

    Returns ``A_off [..., C, C]`` (only pairs whose key lies in an earlier sub-chunk) and
    ``A_diag [..., n, c, c]`` (pairs inside each sub-chunk, causal), or ``(A, None)`` with the
    full causal matrix when no per-channel key decay forces the split.
    """
    *lead, C, K = q.shape
    if G is None or G.shape[-1] == 1:
        A = q @ k.transpose(-1, -2)  # [..., C, C]
        if G is not None:
            # Per-head decay: exact [C, C] factor, exp of a non-positive masked difference.
            A = A * (G - G.transpose(-1, -2)).masked_fill(~masks.causal, float("-inf")).exp()
        return A.masked_fill(~masks.causal, 0.0), None
    if factor:
        qe, ke, _ = _factor(q, k, G)
        return (qe @ ke.transpose(-1, -2)).masked_fill(~masks.causal, 0.0), None  # [..., C, C]
    return stable_scores(q, k, G, masks.sub)


def _apply_values(A_off, A_diag, v, Gv, masks: _Masks, factor: bool):
    """sum_j A_ij v_j exp(Gv_i - Gv_j) over the chunk, stable for strong value decays."""
    *lead, C, V = v.shape
    c = SUB_CHUNK
    n = C // c
    if Gv is None or factor:
        Gv = None if Gv is None else Gv - Gv[..., :1, :]
        v_in = v if Gv is None else v * (-Gv).exp()
        o = A_off @ v_in
        if A_diag is not None:
            o = o + (A_diag @ v_in.view(*lead, n, c, V)).view(*lead, C, V)
        return o if Gv is None else o * Gv.exp()
    return stable_values(A_off, A_diag, v, Gv, masks.sub)


def scratch_bytes(batch: int, num_heads: int, key_dim: int, value_dim: int, chunk_size: int = 64,
                  decay: str = "key") -> int:
    """About the peak bytes gla_chunk holds beside its output at inference, for cost models.

    The fp32 state (updated in place without autograd) plus one block of L = BLOCK_CHUNKS * C
    rows on the factorized path: about eight [B, H, L, *] tensors on the decayed side (the
    head-major copies of the inputs, cumulative decays and their exponentials, decayed queries
    and keys) and two on the other, or, when the other side is much wider, about four and a
    half of it. ``decay``: "key", "value", or "head" (a per-head decay, or none). Within 15% of
    the measured peak for K, V in 64..512 and T a multiple of L (tests/mixers/test_gla_chunk.py);
    a ragged last block adds a transient padded copy.
    """
    B, H, K, V = batch, num_heads, key_dim, value_dim
    rows = B * H * chunk_size * BLOCK_CHUNKS
    per_row = {"key": max(8 * K + 2 * V, 2 * K + 4.5 * V), "value": max(9 * V + 2 * K, 2 * V + 4.5 * K),
               "head": 5 * K + 3 * V}[decay]
    return int(4 * (B * H * K * V + rows * per_row))


def _factorable(G: torch.Tensor) -> bool:
    """Whether exp(G_i - G_0) exp(G_0 - G_j) stays far from fp32 overflow for this chunk."""
    return bool((G.amax(-2) - G.amin(-2)).max() < FACTOR_LIMIT)


def _check(q, k, v, g, gv, initial_state, chunk_size) -> None:
    B, T, H, K = q.shape
    V = v.shape[-1]
    expected = {"k": (k, [(B, T, H, K)]), "v": (v, [(B, T, H, V)]), "g": (g, [(B, T, H, K), (B, T, H, 1)]),
                "gv": (gv, [(B, T, H, V)]), "initial_state": (initial_state, [(B, H, K, V)])}
    if T < 1:
        raise ValueError(f"gla_chunk needs at least one time step, got q of shape {tuple(q.shape)}")
    for name, (x, shapes) in expected.items():
        if x is not None and tuple(x.shape) not in shapes:
            raise ValueError(f"{name} must be {' or '.join(map(str, shapes))} for q {tuple(q.shape)}; "
                             f"got {tuple(x.shape)}")
    if chunk_size < SUB_CHUNK or chunk_size % SUB_CHUNK:
        raise ValueError(f"chunk_size must be a positive multiple of {SUB_CHUNK}, got {chunk_size}")
