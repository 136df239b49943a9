"""Chunkwise-parallel gated delta rule with per-channel decay, in plain PyTorch.

The recurrence of Kimi Delta Attention (Kimi Team, "Kimi Linear", 2025), per head, with state
``S: [K, V]`` (a scalar decay per head gives Gated DeltaNet, no decay DeltaNet):

    S_t = (I - beta_t k_t k_t^T) diag(exp(g_t)) S_{t-1} + beta_t k_t v_t^T,     o_t = scale * S_t^T q_t

Chunkwise form (chunks of ``C`` tokens, ``G_r`` the within-chunk cumulative sum of ``g`` up to and
including token ``r``, ``S_0`` the state entering the chunk). Writing the state after token ``r`` as
``diag(e^{G_r}) S_0 + sum_{s<=r} diag(e^{G_r - G_s}) k_s u_s^T`` makes the pseudo-values ``u`` solve
a unit lower-triangular system (the WY / UT transform):

    (I + diag(beta) L) U = diag(beta) (V - (K e^G) S_0),    L_rs = sum_c k_rc k_sc e^{G_rc - G_sc}, s < r

so ``U = T V - T (K e^G) S_0`` with ``T = (I + diag(beta) L)^{-1} diag(beta)`` from one triangular
solve per chunk; then ``O = A_qk U + (Q e^G) S_0`` (``A_qk`` as ``L`` with ``q`` rows, diagonal
included) and ``S_C = diag(e^{G_C}) S_0 + (K e^{G_C - G})^T U``. Everything but the products with
the state is batched over chunks; only those run chunk after chunk (without autograd, ``Q e^G`` is
stacked under ``T K e^G`` so that one product per chunk serves both).

Stability. ``e^{G_r - G_s}`` (``s <= r``) is at most 1, but split as ``e^{G_r - R} e^{R - G_s}``
(which turns the score matrices into matmuls) its factors overflow fp32 once a chunk decays by more
than ~176 nats, and strong per-channel decays get there. Where every channel of a chunk decays by at
most ``2 * SAFE_NATS``, the reference ``R`` is halfway (in value) between its first and last token's
``G`` and the factors stay within ``e^{+-SAFE_NATS}``. Elsewhere the score matrices are built by
halving: rows in a block's second half meet columns in its first half through the boundary token
``e``, both factors ``e^{G_r - G_e}, e^{G_e - G_s} <= 1``, and the halves recurse until they are
safe (single tokens always are); the state then uses the chunk's start and end as references (factors
<= 1), with factors under ``e^-FLOOR_NATS`` flushed to zero (subnormals make CPUs crawl). Cumulative
sums are fp32, as in fla's kernels; all arithmetic is fp32 (fp64 stays fp64) whatever the input dtype.

Memory is linear in ``T``: chunks are processed in groups of a fixed number of tokens and only the
``[K, V]`` state crosses group borders.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mixers.cores.chunk_layout import from_chunks, to_chunks
from mixers.cores.cumsum import blocked_cumsum
from mixers.cores.delta_recurrence import _across_chunks, _across_chunks_in_place

CHUNK = 32
"""Chunk size (fla's KDA kernels use 64): at 32 the within-chunk products cost half as much and the
chunk-to-chunk loop, whose products with the state cost the same at any chunk size, stays at GEMM speed."""
GROUP = 512
"""Tokens whose within-chunk work is batched at once: bounds the temporaries whatever ``T`` is."""
SAFE_NATS = 60.0
"""Largest decay (in nats) on either side of a reference: factors within e^{+-60} ~ 1e{+-26} stay normal floats."""
FLOOR_NATS = 40.0
"""On the halving path, decay factors below e^-40 ~ 4e-18 (far below fp32 resolution) become zeros."""


def chunk_gated_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    qk_l2norm: bool = False,
    group_tokens: int = GROUP,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gated delta rule over ``q, k: [B, T, H, K]``, ``v: [B, T, H, V]``, log decay ``g: [B, T, H, K]``
    (entries <= 0) and ``beta: [B, T, H]``; ``initial_state``: ``[B, H, K, V]``.

    Returns ``o: [B, T, H, V]`` in ``v``'s dtype and, if asked, the final state ``[B, H, K, V]`` in fp32
    (fp64 for fp64 inputs).
    ``qk_l2norm`` normalises q and k over ``K`` first (``x / sqrt(sum x^2 + 1e-6)``, as fla does).
    """
    B, T, H, K = q.shape
    V = v.shape[-1]
    if k.shape != q.shape or g.shape != q.shape or v.shape[:3] != (B, T, H) or beta.shape != (B, T, H):
        raise ValueError(
            "expected q, k, g of one shape [B, T, H, K], v [B, T, H, V], beta [B, T, H]; got "
            f"q {tuple(q.shape)}, k {tuple(k.shape)}, g {tuple(g.shape)}, v {tuple(v.shape)}, beta {tuple(beta.shape)}"
        )
    if group_tokens <= 0 or group_tokens % CHUNK:
        raise ValueError(f"group_tokens must be a positive multiple of {CHUNK}, got {group_tokens}")
    scale = K**-0.5 if scale is None else scale
    dtype = torch.float64 if q.dtype == torch.float64 else torch.float32  # fp64 for gradient checks
    S = q.new_zeros(B, H, K, V, dtype=dtype)
    if initial_state is not None:
        S = S + initial_state.to(dtype)
    o = v.new_empty(B, T, H, V)
    for t0 in range(0, T, group_tokens):
        t1 = min(t0 + group_tokens, T)
        S = _group(q[:, t0:t1], k[:, t0:t1], v[:, t0:t1], g[:, t0:t1], beta[:, t0:t1], S, scale, qk_l2norm,
                   o[:, t0:t1])
    return o, (S if output_final_state else None)


Tensor = torch.Tensor


def _group(q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor, S: Tensor, scale: float,
           qk_l2norm: bool, o: Tensor) -> Tensor:
    """One group of whole chunks: writes its output into ``o [B, L, H, V]``, returns the state after it.

    Chunk-major layout [N, B, H, C, ...]: each chunk's slice is one contiguous [B*H, C, ...] batch,
    which the sequential part multiplies (and, without autograd, updates) in place.
    """
    B, L, H, K = q.shape
    V, C, dt = v.shape[-1], CHUNK, S.dtype
    infer = not torch.is_grad_enabled()  # in place and into buffers; autograd needs new tensors
    # [N, B, H, C, K] (V for v); padding has k = v = beta = 0 and g = 0 (G repeats its last step),
    # so it leaves the state alone.
    if qk_l2norm:  # normalised on the way into the chunk layout: one pass over q and k fewer
        q, k = (to_chunks(x, C, dt, torch.mul, to_chunks(_l2factor(x, factor, dt), C, dt))
                for x, factor in ((q, scale), (k, 1.0)))
    else:
        q, k = to_chunks(q, C, dt), to_chunks(k, C, dt)
        q = q.mul_(scale) if infer else q * scale
    beta = to_chunks(beta, C, dt).unsqueeze(-1)  # [N, B, H, C, 1]
    # [N, B, H, C, K]: the within-chunk cumulative decay, summed in the work dtype (padding g = 0)
    G = blocked_cumsum(to_chunks(g, C, dt), -2, block=8)
    G_first, G_last = G[..., :1, :], G[..., -1:, :]  # [N, B, H, 1, K]
    # Keys and queries decayed to reference a ([k_a; q_a], stacked for one score product) and keys
    # decayed from reference b (k_b).
    kq = q.new_empty(q.shape[:-2] + (2 * C, K))
    strong = not _safe(G_first, G_last)
    if not strong:
        # One reference per chunk and channel, halfway (in value) between the first and last
        # token's cumulative decay: scores are plain matmuls of the decayed q and k.
        R = (G_first + G_last) * 0.5
        into_a, into_b, out_of_b = R.exp(), None, (G_last - R).exp_()  # before G changes in place
        if infer:
            decay = G.sub_(R).exp_()  # [N, B, H, C, K], within e^{+-SAFE_NATS}
            inverse = None  # k_b = k / decay below: one pass, no reciprocal
        else:
            decay, inverse = _exp_pair(G - R)
    else:
        # Reference a = the chunk's start, b = its last token: every factor is <= 1.
        A_kk, A_qk = _decayed_tril(q, k, G)
        decay, inverse = _decay(G.clone()), _decay(G_last - G)
        into_a, into_b, out_of_b = None, _decay(G_last.clone()), None
    _write(torch.mul, (k, decay), kq[..., :C, :], infer)
    _write(torch.mul, (q, decay), kq[..., C:, :], infer)
    k_b = k.div_(decay) if inverse is None else (inverse.mul_(k) if infer else k * inverse)
    del q, k, G, G_first, G_last, decay, inverse  # the group's peak comes later: free what it does not need
    if not strong:
        A = kq @ k_b.transpose(-1, -2)  # [N, B, H, 2C, C]: A_kk over A_qk
        A_kk, A_qk = A[..., :C, :], A[..., C:, :].tril_()  # the upper triangles may hold inf: never read
    # T = (I + diag(beta) L)^{-1} diag(beta), U~ = T V, W = T K_a; the solve reads only the strict
    # lower triangle of A_kk (a solve with the C columns of diag(beta), then products, is faster
    # than solving for the V + K columns).
    L_kk = A_kk.tril_(-1).mul_(beta) if infer else beta * A_kk.tril_(-1)
    # Solved transposed (T^T (I + diag(beta) L)^T = diag(beta)): LAPACK's column-major operands are
    # then our row-major tensors as they are, with no transposing copies.
    T = torch.linalg.solve_triangular(L_kk.mT, torch.diag_embed(beta.squeeze(-1)), upper=True, left=False,
                                      unitriangular=True).mT  # [N, B, H, C, C]
    if strong:  # chains of strong decays leave subnormal entries (see _decay): make them zeros
        T = _flush(T)
    v = to_chunks(v, C, dt)
    # U = U~ - W S_a (with S_a the state seen from reference a), then Out = A_qk U + Q_a S_a.
    if infer:
        # [U~; 0] and [W; Q_a] stacked per chunk: one product with the state gives U and -Q_a S_a.
        UO = v.new_empty(v.shape[:-2] + (2 * C, V))  # [N, B, H, 2C, V]
        UO[..., :C, :] = T @ v
        UO[..., C:, :] = 0.0
        kq[..., :C, :] = T @ kq[..., :C, :]  # W over Q_a: K_a is not read again
        Out, S = _across_chunks_in_place(UO, kq, A_qk, k_b, into_a, into_b, out_of_b, S)
    else:
        U, W = T @ v, T @ kq[..., :C, :]  # [N, B, H, C, V], [N, B, H, C, K]
        Out, S = _across_chunks(U, W, kq[..., C:, :], A_qk, k_b, into_a, into_b, out_of_b, S)
    from_chunks(Out, o)
    return S


def _write(op, args: tuple[Tensor, ...], out: Tensor, infer: bool) -> None:
    """``out[...] = op(*args)``: straight into ``out`` without autograd, through a new tensor with it."""
    if infer:
        op(*args, out=out)
    else:
        out.copy_(op(*args))


def _decayed_tril(q: torch.Tensor, k: torch.Tensor, G: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``A_xk[..., r, s] = sum_c x[r, c] k[s, c] exp(G[r, c] - G[s, c])`` for ``s <= r`` (x = k, q), else 0.

    ``q, k, G``: [..., C, K] with ``G`` non-increasing along ``C``. Returns ``(A_kk, A_qk)``, each
    [..., C, C]. Blocks are halved until each is safe for a middle reference (see the module docstring).
    """
    C = G.shape[-2]
    A_kk, A_qk = k.new_zeros(k.shape[:-1] + (C,)), q.new_zeros(q.shape[:-1] + (C,))
    size = C // 2
    while size >= 1:
        qb, kb, Gb = (x.unflatten(-2, (C // (2 * size), 2, size)) for x in (q, k, G))  # [..., P, 2, size, K]
        G_e = Gb[..., 0, -1:, :]  # [..., P, 1, K]: the last token of each block's first half
        G_first, G_last = Gb[..., 0, :1, :], Gb[..., 1, -1:, :]
        if _safe(G_first, G_last):
            # Whole 2*size blocks at once, decayed to and from a reference halfway (in value).
            decay, inverse = _exp_pair(Gb.flatten(-3, -2) - (G_first + G_last) * 0.5)  # [..., P, 2*size, K]
            k_e = kb.flatten(-3, -2) * inverse
            for A, x in ((A_kk, kb), (A_qk, qb)):
                block = (x.flatten(-3, -2) * decay) @ k_e.transpose(-1, -2)  # [..., P, 2size, 2size]
                _block_diagonal(A, 2 * size).copy_(block.tril_().movedim(-3, -1))
            return A_kk, A_qk
        # Rows in the second half against columns in the first half, through e; the halves recurse.
        row_decay = _decay(Gb[..., 1, :, :] - G_e)  # [..., P, size, K]
        cols = (kb[..., 0, :, :] * _decay(G_e - Gb[..., 0, :, :])).transpose(-1, -2)  # [..., P, K, size]
        for A, x in ((A_kk, kb), (A_qk, qb)):
            _block_diagonal(A, 2 * size)[..., size:, :size, :] = ((x[..., 1, :, :] * row_decay) @ cols).movedim(-3, -1)
        size //= 2
    # Single tokens: no decay at all.
    A_kk.diagonal(dim1=-2, dim2=-1).copy_(k.square().sum(-1))
    A_qk.diagonal(dim1=-2, dim2=-1).copy_((q * k).sum(-1))
    return A_kk, A_qk


def _exp_pair(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(exp(x), exp(-x))``; not ``1 / exp(x)``, whose gradient ``-1 / exp(x)^2`` overflows to inf."""
    return x.exp(), x.neg_().exp_()


def _decay(x: torch.Tensor) -> torch.Tensor:
    """``exp(x)`` in place for exponents ``x <= 0``, raised to at least ``e^-FLOOR_NATS``: smaller factors
    would end in subnormal floats, which CPUs process ~100x slower, for no visible change in fp32."""
    return F.threshold_(x, -FLOOR_NATS, -float("inf")).exp_()


def _flush(x: torch.Tensor) -> torch.Tensor:
    return x.masked_fill(x.abs() < math.exp(-FLOOR_NATS), 0.0)


def _safe(G_first: torch.Tensor, G_last: torch.Tensor) -> bool:
    """Whether every channel decays by at most 2 SAFE_NATS from a block's first token to its last, so
    that factors relative to the halfway reference stay within e^{+-SAFE_NATS}."""
    return bool((G_first - G_last).max() <= 2 * SAFE_NATS)


def _block_diagonal(A: torch.Tensor, size: int) -> torch.Tensor:
    """View of the diagonal ``size x size`` blocks of ``A [..., C, C]`` as ``[..., size, size, C // size]``."""
    C = A.shape[-1]
    return A.unflatten(-1, (C // size, size)).unflatten(-3, (C // size, size)).diagonal(dim1=-4, dim2=-2)


def _l2norm(x: torch.Tensor, scale: float = 1.0, in_place: bool = False, eps: float = 1e-6) -> torch.Tensor:
    """``scale * x / sqrt(sum x^2 + eps)`` over the last dim (fla's eps); ``in_place`` overwrites ``x``."""
    factor = _l2factor(x, scale, x.dtype, eps)
    return x.mul_(factor) if in_place else x * factor


def _l2factor(x: torch.Tensor, scale: float, dtype: torch.dtype, eps: float = 1e-6) -> torch.Tensor:
    """``scale / sqrt(sum x^2 + eps)`` over the last dim of ``x``, in ``dtype``, keeping that dim (size 1)."""
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True, dtype=dtype)
    return torch.rsqrt(norm.square() + eps) * scale
