"""Blockwise forgetting attention: the core of the FoX twin (``mixers/fox.py``).

Forgetting attention (Lin et al., 2025) is causal softmax attention with an additive bias built
from per-head scalar forget gates f_t = log sigmoid(.) <= 0:

    F_i = sum_{t<=i} f_t,    o_i = sum_{j<=i} softmax_j(scale q_i k_j + F_i - F_j) v_j

How it is computed. Queries in blocks of ``block_q``; for each, keys in blocks of ``block_k`` from
the diagonal backwards, merged by an online softmax (running row max m and sum l, FlashAttention's
recurrence), so the live scratch is one [block_q, block_k] tile per head and no L x L matrix
exists. Work stays quadratic; memory is linear. The backward recomputes the tiles from the saved
row statistics (m, l) instead of storing them, so training memory is linear too.

Skipping. F never increases, so once a key block's bias F_i - F_j plus the Cauchy-Schwarz bound
|q_i| max|k_j| puts every score of every row more than 87 (+ slack) below that row's running max,
every weight of that block and of all earlier blocks is flushed to 0 (below), and the loop stops:
the result is the one the full loop would give, bit for bit. With random-init gates (log forget
~ -0.7 per frame) only the last ~150 frames matter, and the cost becomes close to linear.

Flushing. Weights below e^-87 (fp32's smallest normal number is e^-87.34) are set to exactly 0,
as a GPU's exp with flush-to-zero does: such a weight is worth < 2^-125 of its row's sum (>= 1),
and subnormal arithmetic slows CPUs ~10x.

Arithmetic is fp32 for fp32/bf16/fp16 inputs and fp64 for fp64 inputs (for reference checks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Chosen by CPU time on one core of a Xeon (AVX-512) at 4,999 frames, 4 heads of 256, fp32: with
# random-init gates 64 x 256 was fastest of 20 pairs (0.17 s vs 0.24 s for 256 x 512); with gates
# saturated open (nothing skipped) every pair from 64 to 512 lay within 10% of the best.
BLOCK_Q = 64
BLOCK_K = 256
_FLUSH = -87.0
# Skip margin beyond the flush point: rounding of the bound and of the scores it bounds.
_MARGIN = 16.0


def forgetting_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor,
                         scale: float | None = None, block_q: int = BLOCK_Q, block_k: int = BLOCK_K,
                         skip: bool = True) -> torch.Tensor:
    """q, k: [B, H, T, K]; v: [B, H, T, V]; g: [B, H, T] log forget gates (<= 0).

    Returns o: [B, T, H, V] in v's dtype (token-major, ready for an output projection).
    Differentiable in q, k, v and g. ``skip=False`` visits every causal key block.
    """
    if q.dim() != 4 or k.shape != q.shape or v.shape[:3] != q.shape[:3] or g.shape != q.shape[:3]:
        raise ValueError(
            "expected q, k [B, H, T, K], v [B, H, T, V], g [B, H, T]; got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}, {tuple(g.shape)}"
        )
    if block_q < 1 or block_k < 1:
        raise ValueError(f"block sizes must be positive; got block_q={block_q}, block_k={block_k}")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return _ForgettingAttention.apply(q, k, v, g, scale, block_q, block_k, skip)


class _Tiles:
    """What both passes share: fp32 F, skip bounds, and the key blocks a query block visits."""

    def __init__(self, q, k, g, scale: float, block_k: int, skip: bool):
        self.q, self.k, self.scale, self.block_k = q, k, scale, block_k
        self.dtype = torch.float64 if q.dtype == torch.float64 else torch.float32
        # [B, H, T]: F_i, so that query i's bias on key j is F_i - F_j
        self.cum = g.to(self.dtype).cumsum(-1)
        # [B, H, T]: max_{j' <= j} |k_j'|, which with |q_i| bounds q_i k_j' for every key up to j
        self.key_bound = _norms(k, self.dtype).cummax(-1).values if skip and k.shape[2] else None
        # rounding of F_i - F_j grows with |F|; 2^-16 leaves a wide margin over fp32's 2^-23
        self.slack = -_FLUSH + _MARGIN + 2.0**-16 * self.cum.abs().max().item() if skip and k.shape[2] else 0

    def queries(self, i0: int, i1: int) -> torch.Tensor:
        # [B, H, n, K]: a copy in the compute dtype with the scale folded in
        return self.q[:, :, i0:i1].to(self.dtype) * self.scale

    def key_blocks(self, qb: torch.Tensor, i0: int, i1: int, row_max: torch.Tensor):
        """Yield (j0, j1) from the diagonal backwards; ``row_max`` [B, H, n], which the caller updates
        in place, is read before each later block to decide whether the rest can be skipped."""
        q_bound = qb.norm(dim=-1) * (1 + 1e-3) if self.key_bound is not None else None
        # the first block covers every query of the block, so each row's max is finite after it
        j1, j0 = i1, max(0, min(i0, i1 - self.block_k))
        while j1 > 0:
            if q_bound is not None and j1 < i1:
                # [B, H, n]: an upper bound of score - running max over all keys up to j1 - 1
                bound = (q_bound * self.key_bound[:, :, j1 - 1, None] + self.cum[:, :, i0:i1]
                         - self.cum[:, :, j1 - 1, None] - row_max)
                if bound.max() < -self.slack:
                    return
            yield j0, j1
            j1, j0 = j0, max(0, j0 - self.block_k)

    def scores(self, qb, i0: int, i1: int, j0: int, j1: int) -> torch.Tensor:
        # [B, H, n, m]: forget bias plus scaled q k, future keys at -inf
        s = self.cum[:, :, i0:i1, None] - self.cum[:, :, None, j0:j1]
        s.flatten(0, 1).baddbmm_(qb.flatten(0, 1), self.k[:, :, j0:j1].to(s).flatten(0, 1).transpose(1, 2))
        if j1 > i0 + 1:
            future = torch.arange(i0, i1, device=s.device)[:, None] < torch.arange(j0, j1, device=s.device)
            s.masked_fill_(future, float("-inf"))
        return s


def _norms(x: torch.Tensor, dtype: torch.dtype, rows: int = 4096) -> torch.Tensor:
    """[B, H, T, K] -> [B, H, T] norms, upcasting a few rows at a time (no full-precision copy of x)."""
    return torch.cat([x[:, :, t:t + rows].to(dtype).norm(dim=-1) for t in range(0, x.shape[2], rows)], -1)


def _flushed_exp(x: torch.Tensor) -> torch.Tensor:
    """exp in place, with arguments at or below the flush point giving exactly 0."""
    return F.threshold_(x, _FLUSH, float("-inf")).exp_()


class _ForgettingAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, g, scale, block_q, block_k, skip):
        B, H, T, _ = q.shape
        tiles = _Tiles(q, k, g, scale, block_k, skip)
        # [B, T, H, V] output; [B, H, T] final row max and sum, for the backward
        o = v.new_empty(B, T, H, v.shape[-1])
        m_all = q.new_empty(B, H, T, dtype=tiles.dtype)
        sum_all = torch.empty_like(m_all)
        for i0 in range(0, T, block_q):
            i1 = min(i0 + block_q, T)
            qb = tiles.queries(i0, i1)
            # [B, H, n]: running row max and sum of weights; [B, H, n, V]: weighted values
            m = qb.new_full((B, H, i1 - i0), float("-inf"))
            total = torch.zeros_like(m)
            acc = qb.new_zeros(B, H, i1 - i0, v.shape[-1])
            for j0, j1 in tiles.key_blocks(qb, i0, i1, m):
                s = tiles.scores(qb, i0, i1, j0, j1)
                m_new = torch.maximum(m, s.amax(-1))
                # [B, H, n, m]: unnormalized weights, in place; the old sums shrink by exp(m - m_new)
                p = _flushed_exp(s.sub_(m_new[..., None]))
                rescale = _flushed_exp(m - m_new)
                m.copy_(m_new)
                total.mul_(rescale).add_(p.sum(-1))
                acc.mul_(rescale[..., None])
                acc.flatten(0, 1).baddbmm_(p.flatten(0, 1), v[:, :, j0:j1].to(p).flatten(0, 1))
            o[:, i0:i1] = acc.div_(total[..., None]).transpose(1, 2)
            m_all[:, :, i0:i1], sum_all[:, :, i0:i1] = m, total
        ctx.save_for_backward(q, k, v, g, o, m_all, sum_all)
        ctx.config = scale, block_q, block_k, skip
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, g, o, m_all, sum_all = ctx.saved_tensors
        scale, block_q, block_k, skip = ctx.config
        B, H, T, _ = q.shape
        tiles = _Tiles(q, k, g, scale, block_k, skip)
        dq, dk, dv = (torch.zeros(x.shape, dtype=tiles.dtype, device=x.device) for x in (q, k, v))
        dcum = torch.zeros_like(tiles.cum)
        # [B, H, T, V] and [B, H, T]: output gradient head-major; delta_i = do_i . o_i
        do = do.transpose(1, 2).to(tiles.dtype)
        delta = (do * o.transpose(1, 2).to(tiles.dtype)).sum(-1)
        for i0 in range(0, T, block_q):
            i1 = min(i0 + block_q, T)
            qb = tiles.queries(i0, i1)
            m, total = m_all[:, :, i0:i1], sum_all[:, :, i0:i1]
            dob = do[:, :, i0:i1].flatten(0, 1)
            # the final max is at least the forward's running max, so this skips a superset of blocks
            for j0, j1 in tiles.key_blocks(qb, i0, i1, m):
                # [B, H, n, m]: the forward's normalized weights, recomputed
                p = _flushed_exp(tiles.scores(qb, i0, i1, j0, j1).sub_(m[..., None])).div_(total[..., None])
                vb, kb = v[:, :, j0:j1].to(p).flatten(0, 1), k[:, :, j0:j1].to(p).flatten(0, 1)
                dv[:, :, j0:j1].flatten(0, 1).baddbmm_(p.flatten(0, 1).transpose(1, 2), dob)
                # [B, H, n, m]: gradient of the scores, ds = p (dp - delta)
                ds = torch.bmm(dob, vb.transpose(1, 2)).view_as(p).sub_(delta[:, :, i0:i1, None]).mul_(p)
                dq[:, :, i0:i1].flatten(0, 1).baddbmm_(ds.flatten(0, 1), kb)
                dk[:, :, j0:j1].flatten(0, 1).baddbmm_(ds.flatten(0, 1).transpose(1, 2), qb.flatten(0, 1))
                # the bias F_i - F_j: +ds summed over keys for query i, -ds summed over queries for key j
                dcum[:, :, i0:i1] += ds.sum(-1)
                dcum[:, :, j0:j1] -= ds.sum(-2)
        # F_i = sum_{t<=i} f_t, so df_t = sum_{i>=t} dF_i
        dg = dcum.flip(-1).cumsum(-1).flip(-1)
        dq.mul_(scale)
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), dg.to(g.dtype), None, None, None, None
