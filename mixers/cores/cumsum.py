"""Cumulative sums along a time axis as small triangular products: the in-place cores' one scan.

``torch.cumsum`` over a dimension that is not the last runs a scalar loop per column on CPU, several
times slower than a pass over the tensor. A sum within blocks of ``block`` rows is instead one
batched product with a ``[block, block]`` lower-triangular matrix of ones; the blocks' totals are
then summed (``block`` times fewer rows) and added to the blocks after them. The sums restart every
``period`` rows (a chunk of a chunkwise core), or never.

Used by the inference cores of GSA (``mixers.cores.fused_gsa``), LightNet (``mixers.cores.inplace_lightnet``) and
the delta rule (``mixers.cores.chunkwise_delta``). Rounding is a plain sum's, in a different order.
"""

from __future__ import annotations

import math

import torch

BLOCK = 16
"""Rows per block of the first level."""


def blocked_cumsum(x: torch.Tensor, dim: int, period: int | None = None, block: int = BLOCK) -> torch.Tensor:
    """Inclusive cumulative sum of ``x`` along ``dim``, restarting every ``period`` rows (None: never).

    A period that is a multiple of ``block`` takes the two-level form; a shorter one (at most two
    blocks) one triangular product; any other falls back to ``torch.cumsum``. A last, partial period
    is summed on its own. Returns a new tensor of ``x``'s shape.
    """
    dim = dim % x.dim()
    n = x.shape[dim]
    period = n if period is None else period
    if period < 1 or block < 1:
        raise ValueError(f"period and block must be positive, got period={period}, block={block}")
    # [before, rows, after]: the summed axis in the middle, everything after it one contiguous run.
    rows = x.reshape(math.prod(x.shape[:dim]), n, math.prod(x.shape[dim + 1:]))
    full = n - n % period
    parts = [_periods(rows[:, :full], period, block)] if full else []
    if full < n:
        parts.append(_periods(rows[:, full:], n - full, block))
    out = parts[0] if len(parts) == 1 else torch.cat(parts, 1)
    return out.view(x.shape)


def _periods(x: torch.Tensor, period: int, block: int) -> torch.Tensor:
    """``x [A, m * period, P]`` summed within each of its m periods."""
    A, n, P = x.shape
    m = n // period
    if period % block == 0 and period > block:
        ones = torch.ones(block, block, dtype=x.dtype, device=x.device).tril_()
        y = torch.matmul(ones, x.reshape(A * n // block, block, P)).view(A * m, period // block, block, P)
        # Each block offset by the totals of its period's blocks before it (add_: no copy of the view).
        y[:, 1:].add_(y[:, :-1, -1:].cumsum(1))
        return y.view(A, n, P)
    if period <= 2 * block:
        ones = torch.ones(period, period, dtype=x.dtype, device=x.device).tril_()
        return torch.matmul(ones, x.reshape(A * m, period, P)).view(A, n, P)
    return torch.cumsum(x.reshape(A * m, period, P), 1).view(A, n, P)
