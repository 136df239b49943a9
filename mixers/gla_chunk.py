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
    state = q.new_zeros(B, H, K, V, dtype=work)
    if initial_state is not None:
        state = state + initial_state.to(work)
    o = v.new_empty(B, T, H, V)
    masks = _Masks(C, q.device)
    for start in range(0, T, C):
        end = min(start + C, T)
        # [B, C, H, *] -> [B, H, C, *], fp32, zero-padded to C rows (zero keys leave S alone).
        qc, kc, vc, gc, gvc = (
            None if x is None else _chunk(x, start, end, C, work) for x in (q, k, v, g, gv)
        )
        oc, state = _chunk_step(qc * scale, kc, vc, gc, gvc, state, masks)
        o[:, start:end] = oc[:, :, : end - start].transpose(1, 2).to(o.dtype)
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


def _chunk(x: torch.Tensor, start: int, end: int, C: int, work: torch.dtype) -> torch.Tensor:
    xc = x[:, start:end].transpose(1, 2).to(work)
    if end - start < C:
        xc = torch.nn.functional.pad(xc, (0, 0, 0, C - (end - start)))
    return xc


def _chunk_step(q, k, v, g, gv, state, masks: _Masks):
    """One chunk: q, k [B, H, C, K]; v [B, H, C, V]; g [B, H, C, K|1] or None; gv [B, H, C, V] or None."""
    G = None if g is None else g.cumsum(-2)
    Gv = None if gv is None else gv.cumsum(-2)
    # Inter-chunk: what the carried state says about this chunk's rows.  [B, H, C, V]
    o = (q if G is None else q * G.exp()) @ state
    if Gv is not None:
        o = o * Gv.exp()
    # Intra-chunk, in two parts that share the value-decay step: pairs in different sub-chunks
    # (A_off) and pairs inside one sub-chunk (A_diag).
    A_off, A_diag = _scores(q, k, G, masks)
    o = o + _apply_values(A_off, A_diag, v, Gv, masks)
    # State carried to the next chunk: decayed to the chunk's end, plus this chunk's keys.
    k_end = k if G is None else k * (G[:, :, -1:] - G).exp()
    v_end = v if Gv is None else v * (Gv[:, :, -1:] - Gv).exp()
    if G is not None:
        state = state * G[:, :, -1, :, None].exp()
    if Gv is not None:
        state = state * Gv[:, :, -1, None, :].exp()
    state = state + k_end.transpose(-1, -2) @ v_end
    return o, state


def _scores(q, k, G, masks: _Masks):
    """Causal decayed scores of one chunk, split by sub-chunk.

    Returns ``A_off [B, H, C, C]`` (only pairs whose key lies in an earlier sub-chunk) and
    ``A_diag [B, H, n, c, c]`` (pairs inside each sub-chunk, causal), or ``(A, None)`` with the
    full causal matrix when no per-channel key decay forces the split.
    """
    B, H, C, K = q.shape
    if G is None or G.shape[-1] == 1:
        A = q @ k.transpose(-1, -2)  # [B, H, C, C]
        if G is not None:
            # Per-head decay: exact [C, C] factor, exp of a non-positive masked difference.
            A = A * (G - G.transpose(-1, -2)).masked_fill(~masks.causal, float("-inf")).exp()
        return A.masked_fill(~masks.causal, 0.0), None
    if _factorable(G):
        G = G - G[:, :, :1]
        A = (q * G.exp()) @ (k * (-G).exp()).transpose(-1, -2)  # [B, H, C, C]
        return A.masked_fill(~masks.causal, 0.0), None
    c = SUB_CHUNK
    n = C // c
    Gs, qs, ks = (x.view(B, H, n, c, K) for x in (G, q, k))
    ref = Gs[:, :, :, -1:]  # [B, H, n, 1, K]: end of each sub-chunk
    # Rows against the reference of key sub-chunk b; rows not after b are masked to exponent 0.
    q_ref = q[:, :, None] * torch.where(masks.later, G[:, :, None] - ref, 0.0).exp()  # [B, H, n, C, K]
    k_ref = ks * (ref - Gs).exp()  # [B, H, n, c, K]
    A_off = (q_ref @ k_ref.transpose(-1, -2)).masked_fill(~masks.later, 0.0)  # [B, H, n, C, c]
    A_off = A_off.permute(0, 1, 3, 2, 4).reshape(B, H, C, C)
    # Inside a sub-chunk: sum_k q_i k_j exp(G_i - G_j), j <= i, in log space.  [B, H, n, c, c, K]
    decay = (Gs[:, :, :, :, None] - Gs[:, :, :, None]).masked_fill(~masks.sub_causal[..., None], float("-inf"))
    A_diag = (qs[:, :, :, :, None] * ks[:, :, :, None] * decay.exp()).sum(-1)  # [B, H, n, c, c]
    return A_off, A_diag


def _apply_values(A_off, A_diag, v, Gv, masks: _Masks):
    """sum_j A_ij v_j exp(Gv_i - Gv_j) over the chunk, stable for strong value decays."""
    B, H, C, V = v.shape
    c = SUB_CHUNK
    n = C // c
    if Gv is None or _factorable(Gv):
        Gv = None if Gv is None else Gv - Gv[:, :, :1]
        v_in = v if Gv is None else v * (-Gv).exp()
        o = A_off @ v_in
        if A_diag is not None:
            o = o + (A_diag @ v_in.view(B, H, n, c, V)).view(B, H, C, V)
        return o if Gv is None else o * Gv.exp()
    if A_diag is None:
        # Split the full causal matrix into off-sub-chunk and within-sub-chunk parts.
        blocks = A_off.view(B, H, n, c, n, c)
        A_diag = torch.diagonal(blocks, dim1=2, dim2=4).permute(0, 1, 4, 2, 3)  # [B, H, n, c, c]
        same = torch.eye(n, dtype=torch.bool, device=v.device)[:, None, :, None]  # [n, 1, n, 1]
        A_off = blocks.masked_fill(same, 0.0).view(B, H, C, C)
    Gvs, vs = Gv.view(B, H, n, c, V), v.view(B, H, n, c, V)
    ref = Gvs[:, :, :, -1:]  # [B, H, n, 1, V]
    v_ref = vs * (ref - Gvs).exp()  # [B, H, n, c, V]
    # Scores against key sub-chunk b, then each row's decay from b's end.  [B, H, n, C, V]
    per_b = A_off.view(B, H, C, n, c).transpose(2, 3) @ v_ref
    per_b = per_b * torch.where(masks.later, Gv[:, :, None] - ref, 0.0).exp()
    o = per_b.sum(2)
    decay = (Gvs[:, :, :, :, None] - Gvs[:, :, :, None]).masked_fill(~masks.sub_causal[..., None], float("-inf"))
    # [B, H, n, c, c, V] -> [B, H, n, c, V]
    o_diag = (A_diag[..., None] * decay.exp() * vs[:, :, :, None]).sum(-2)
    return o + o_diag.reshape(B, H, C, V)


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
