"""The chunk-major layout of the chunkwise cores (``chunkwise_lightnet``, ``chunkwise_delta`` in this package).

A sequence ``x [B, L, H, F]`` becomes ``[N, B, H, C, F]``: N chunks of C steps, each chunk's slice one
contiguous ``[B*H, C, F]`` batch of matrices, so batched products and the chunk-to-chunk loop read
plain memory. ``to_chunks`` makes that copy and, without autograd, applies the first elementwise
operation on the way (one pass over the input instead of two); ``from_chunks`` writes the result
back into a ``[B, L, H, V]`` tensor.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Tensor = torch.Tensor


def to_chunks(x: Tensor, C: int, dtype: torch.dtype, op: Callable | None = None, other=None,
              pad_value: float | None = 0.0, out: Tensor | None = None) -> Tensor:
    """``op(x, other)`` of ``x [B, L, H, F]`` (or ``[B, L, H]``) as a new contiguous ``[N, B, H, C, F]``
    (``[N, B, H, C]``) tensor in ``dtype``; None copies.

    ``op`` is a torch function taking ``out=`` (``torch.mul``, ``torch.sub``, ``torch.div``,
    ``torch.cumsum`` with ``other`` its dim); a tensor ``other`` is chunk-major already ``[N, B, H, C, *]``,
    or broadcasts over the steps of every chunk (size 1 in dim -2). Steps past L, up to N * C, are
    ``pad_value``, or repeat the last step for None. Always a new tensor: callers may update it in place.
    """
    squeeze = x.dim() == 3
    x = x.unsqueeze(-1) if squeeze else x
    B, L, H, F = x.shape
    N = -(-L // C)
    full, rest = divmod(L, C)
    if out is None:
        buffer = x.new_empty((N, B, H, C, F), dtype=dtype)
    else:
        buffer = out.unsqueeze(-1) if squeeze else out
    # (source view [n, B, H, c, F], where it goes in the buffer)
    parts = [(x[:, : full * C].unflatten(1, (full, C)).transpose(0, 1).transpose(2, 3), (slice(0, full),))]
    if rest:
        tail = (slice(full, N), ..., slice(0, rest), slice(None))
        parts.append((x[:, full * C :].unsqueeze(0).transpose(2, 3), tail))
    for src, index in parts:
        dst = buffer[index]
        if op is None:
            dst.copy_(src)
            continue
        per_step = isinstance(other, Tensor) and other.dim() == 5 and other.shape[-2] == C
        arg = other[index] if per_step else other
        if torch.is_grad_enabled():
            dst.copy_(op(src, arg))
        else:
            op(src, arg, out=dst)
    if rest:
        buffer[full:, ..., rest:, :] = buffer[full:, ..., rest - 1 : rest, :] if pad_value is None else pad_value
    return buffer.squeeze(-1) if squeeze else buffer


def from_chunks(x: Tensor, out: Tensor) -> Tensor:
    """Write chunk-major ``x [N, B, H, C, V]`` into ``out [B, L, H, V]`` (dropping the padding); returns ``out``."""
    C, L = x.shape[-2], out.shape[1]
    full, rest = divmod(L, C)
    out[:, : full * C].unflatten(1, (full, C)).copy_(x[:full].permute(1, 0, 3, 2, 4))
    if rest:
        out[:, full * C :].copy_(x[full, ..., :rest, :].transpose(1, 2))
    return out
