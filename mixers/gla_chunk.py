"""Chunkwise-parallel gated linear attention: the core shared by every GLA-family twin.

Gated Linear Attention (Yang et al., 2024, "Gated Linear Attention Transformers with
Hardware-Efficient Training") with decay on the key channels, the value channels, or both:

    S_t = diag(exp(g_t)) S_{t-1} diag(exp(gv_t)) + k_t v_t^T        S_t: [K, V]
    o_t = scale * S_t^T q_t

- ``g`` per key channel ``[B, T, H, K]`` (GLA, LightNet, GSA's second pass), or one per head
  ``[B, T, H, 1]`` (RetNet's retention: a constant log decay broadcast over time works too),
  or ``None`` (no key decay).
- ``gv`` per value channel ``[B, T, H, V]`` (GSA's first pass, whose "values" are the slots).

How it is computed. The sequence is cut into chunks of ``chunk_size`` (64) handled one after
the other, carrying the fp32 state ``S``; work and memory are linear in T, and the live scratch
is one chunk's worth. Within a chunk, with G the inclusive cumulative log decay:

    o_i = exp(Gv_i) * (q_i exp(G_i))^T S  +  sum_{j<=i} A_ij [v_j exp(Gv_i - Gv_j)]
    A_ij = q_i^T diag(exp(G_i - G_j)) k_j

The usual trick writes exp(G_i - G_j) as exp(G_i - G_0) exp(G_0 - G_j), which turns A into
one matmul; it is used for every chunk whose decay spread (max - min of G) stays below
FACTOR_LIMIT = 60, so neither factor can overflow fp32. Chunks with stronger decay (GSA's and
LightNet's gates can reach hundreds within a chunk) take a stable path instead: the chunk is
split into sub-chunks of 16; pairs of positions in different sub-chunks use the end of the
earlier sub-chunk as reference point (exp(G_i - r) exp(r - G_j), both exponents <= 0 when
g <= 0), and pairs inside one sub-chunk are computed directly in log space ([16, 16, K] per
sub-chunk). A per-head scalar decay needs neither: its [C, C] decay matrix is exp of masked
differences. The same two paths serve the value decay. All arithmetic is fp32;
the output has the dtype of ``v`` (fp64 inputs are computed in fp64, for reference checks).
"""

from __future__ import annotations

import torch

SUB_CHUNK = 16
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
        qb, kb, vb, gb, gvb = (None if x is None else _blocks(x, start, end, C, work) for x in (q, k, v, g, gv))
        ob, state = _block_step(qb, kb, vb, gb, gvb, scale, state, masks)
        # [B, H, N, C, V] -> [B, T, H, V]
        o[:, start:end] = ob.flatten(2, 3)[:, :, : end - start].transpose(1, 2).to(o.dtype)
    return o, state


class _Masks:
    """Boolean masks for one chunk of C rows split into sub-chunks of SUB_CHUNK."""

    def __init__(self, C: int, device: torch.device):
        c = SUB_CHUNK
        n = C // c
        pos = torch.arange(C, device=device)
        self.causal = pos[:, None] >= pos[None, :]  # [C, C]
        sub = torch.arange(c, device=device)
        self.sub_causal = sub[:, None] >= sub[None, :]  # [c, c]
        # later[b, i]: row i lies in a sub-chunk after sub-chunk b.  [n, C, 1]
        self.later = (pos[None, :] // c > torch.arange(n, device=device)[:, None])[..., None]


def _blocks(x: torch.Tensor, start: int, end: int, C: int, work: torch.dtype) -> torch.Tensor:
    # [B, L, H, *] -> [B, H, L, *] -> [B, H, N, C, *]
    xb = x[:, start:end].transpose(1, 2).to(work)
    if (end - start) % C:
        xb = torch.nn.functional.pad(xb, (0, 0, 0, C - (end - start) % C))
    return xb.unflatten(2, (-1, C))


def _block_step(q, k, v, g, gv, scale, state, masks: _Masks):
    """Chunks of one block: q, k [B, H, N, C, K]; v [B, H, N, C, V]; g [.., K|1] or None; gv [.., V] or None."""
    G = None if g is None else g.cumsum(-2)
    Gv = None if gv is None else gv.cumsum(-2)
    N = q.shape[2]
    # Intra-chunk: every chunk of the block at once when all can be factorized, else chunk by
    # chunk, each taking the factorized or the stable path.  [B, H, N, C, V]
    per_key = G is not None and G.shape[-1] > 1
    fk = not per_key or _factorable(G)
    fv = Gv is None or _factorable(Gv)
    if fk and fv:
        o = _intra(q, k, v, G, Gv, scale, masks, fk, fv)
    else:
        o = torch.cat([
            _intra(q[:, :, n : n + 1], k[:, :, n : n + 1], v[:, :, n : n + 1],
                   None if G is None else G[:, :, n : n + 1], None if Gv is None else Gv[:, :, n : n + 1],
                   scale, masks, not per_key or _factorable(G[:, :, n]), Gv is None or _factorable(Gv[:, :, n]))
            for n in range(N)
        ], dim=2)
    # Inter-chunk: the carried state, decayed to each row, then updated chunk by chunk with the
    # chunk's keys decayed to its end. Every exponent here is <= 0 for decays <= 0.
    q_dec = q * scale if G is None else q * (G.exp() * scale)  # [B, H, N, C, K]
    out_dec = None if Gv is None else Gv.exp()  # [B, H, N, C, V]
    k_dec = k if G is None else k * (G[..., -1:, :] - G).exp()
    v_dec = v if Gv is None else v * (Gv[..., -1:, :] - Gv).exp()
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
        G = G - G[..., :1, :]
        A = (q * G.exp()) @ (k * (-G).exp()).transpose(-1, -2)  # [..., C, C]
        return A.masked_fill(~masks.causal, 0.0), None
    c = SUB_CHUNK
    n = C // c
    Gs, qs, ks = (x.view(*lead, n, c, K) for x in (G, q, k))
    ref = Gs[..., -1:, :]  # [..., n, 1, K]: end of each sub-chunk
    # Rows against the reference of key sub-chunk b; rows not after b are masked to exponent 0.
    q_ref = q.unsqueeze(-3) * torch.where(masks.later, G.unsqueeze(-3) - ref, 0.0).exp()  # [..., n, C, K]
    k_ref = ks * (ref - Gs).exp()  # [..., n, c, K]
    A_off = (q_ref @ k_ref.transpose(-1, -2)).masked_fill(~masks.later, 0.0)  # [..., n, C, c]
    A_off = A_off.transpose(-3, -2).reshape(*lead, C, C)
    # Inside a sub-chunk: sum_k q_i k_j exp(G_i - G_j), j <= i, in log space.  [..., n, c, c, K]
    decay = (Gs.unsqueeze(-2) - Gs.unsqueeze(-3)).masked_fill(~masks.sub_causal[..., None], float("-inf"))
    A_diag = (qs.unsqueeze(-2) * ks.unsqueeze(-3) * decay.exp()).sum(-1)  # [..., n, c, c]
    return A_off, A_diag


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
    if A_diag is None:
        # Split the full causal matrix into off-sub-chunk and within-sub-chunk parts.
        blocks = A_off.view(*lead, n, c, n, c)
        A_diag = torch.diagonal(blocks, dim1=-4, dim2=-2).movedim(-1, -3)  # [..., n, c, c]
        same = torch.eye(n, dtype=torch.bool, device=v.device)[:, None, :, None]  # [n, 1, n, 1]
        A_off = blocks.masked_fill(same, 0.0).view(*lead, C, C)
    Gvs, vs = Gv.view(*lead, n, c, V), v.view(*lead, n, c, V)
    ref = Gvs[..., -1:, :]  # [..., n, 1, V]
    v_ref = vs * (ref - Gvs).exp()  # [..., n, c, V]
    # Scores against key sub-chunk b, then each row's decay from b's end.  [..., n, C, V]
    per_b = A_off.view(*lead, C, n, c).transpose(-3, -2) @ v_ref
    per_b = per_b * torch.where(masks.later, Gv.unsqueeze(-3) - ref, 0.0).exp()
    o = per_b.sum(-3)
    decay = (Gvs.unsqueeze(-2) - Gvs.unsqueeze(-3)).masked_fill(~masks.sub_causal[..., None], float("-inf"))
    # [..., n, c, c, V] -> [..., n, c, V]
    o_diag = (A_diag[..., None] * decay.exp() * vs.unsqueeze(-3)).sum(-2)
    return o + o_diag.reshape(*lead, C, V)


def scratch_bytes(batch: int, num_heads: int, key_dim: int, value_dim: int, chunk_size: int = 64,
                  decay: str = "key") -> int:
    """About the peak bytes gla_chunk holds beside its output at inference, for cost models.

    The fp32 state (updated in place without autograd) plus one block of L = BLOCK_CHUNKS * C
    rows: about six [B, H, L, *] tensors on the decayed side (cumulative decays, their
    exponentials, decayed queries and keys, and the copies matmul makes of strided operands)
    and two on the other, on the factorized path. ``decay``: "key", "value", or "head" (a
    per-head decay, or none, which needs fewer). Measured within about 25% at K, V in 64..512.
    """
    B, H, K, V = batch, num_heads, key_dim, value_dim
    rows = B * H * chunk_size * BLOCK_CHUNKS
    heavy, light = {"key": (6 * K, 2 * V), "value": (6 * V, 2 * K), "head": (4 * K, 2 * V)}[decay]
    return 4 * (B * H * K * V + rows * (heavy + light))


def _factorable(G: torch.Tensor) -> bool:
    """Whether exp(G_i - G_0) exp(G_0 - G_j) stays far from fp32 overflow for this chunk."""
    return bool((G.amax(-2) - G.amin(-2)).max() < FACTOR_LIMIT)


def _check(q, k, v, g, gv, initial_state, chunk_size) -> None:
    B, T, H, K = q.shape
    V = v.shape[-1]
    if T < 1:
        raise ValueError(f"gla_chunk needs at least one time step, got q of shape {tuple(q.shape)}")
    if k.shape != q.shape or v.shape[:3] != q.shape[:3]:
        raise ValueError(
            f"expected k {tuple(q.shape)} and v [B, T, H, V] = [{B}, {T}, {H}, V]; "
            f"got k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if g is not None and g.shape not in ((B, T, H, K), (B, T, H, 1)):
        raise ValueError(f"g must be [B, T, H, K] = {(B, T, H, K)} or [B, T, H, 1]; got {tuple(g.shape)}")
    if gv is not None and gv.shape != (B, T, H, V):
        raise ValueError(f"gv must be [B, T, H, V] = {(B, T, H, V)}; got {tuple(gv.shape)}")
    if initial_state is not None and initial_state.shape != (B, H, K, V):
        raise ValueError(f"initial_state must be {(B, H, K, V)}; got {tuple(initial_state.shape)}")
    if chunk_size < SUB_CHUNK or chunk_size % SUB_CHUNK:
        raise ValueError(f"chunk_size must be a positive multiple of {SUB_CHUNK}, got {chunk_size}")
