"""LightNet's additive core without autograd: ``mixers.cores.chunkwise_lightnet``'s frame, a chunk at a time, in place.

The equations are ``mixers.cores.chunkwise_lightnet``'s (Qin et al., 2024, the additive decay; one reference
r per group and key channel): with ``ke_j = exp(u_j - r)`` and ``D_i = exp(z_before - r) + sum_{j<=i} ke_j``,

    o_i = F^-1/2 (q_i / D_i)^T [ S' + sum_{j<=i} ke_j v_j^T ],      S' = exp(z_before - r) S.

Only how it runs differs. Chunks of C steps go in order and the state is carried and updated in
place, ``S' += ke_n^T v_n`` (one ``baddbmm``), so the per-chunk states of the batched form (one
[H, F, V] matrix per chunk, written, summed and read back) are never stored. Keys, queries and
values keep their ``[B, L, H, *]`` layout: one chunk of one sequence is an ``[H, C, F]`` view with
row stride H*F, which BLAS reads as it is, so no chunk-major copies either. Per chunk: the scores
``(q/D) ke^T`` (masked causal), their values, the state read added to them (one ``[H, C, V]``
buffer), its copy into the output, then the state update. ``D`` is one cumulative sum over the
group and carries the scale F^-1/2 (so the queries do).

Measured at 4,999 frames, F = 128, V = 256, 4 heads, 1 thread (AMD EPYC, AVX512; CPU time, the
machine shared): at C = 64 the core ran at ~63 GFLOP/s against ~92 for a large sgemm, its state
reads and updates at ~90, the in-chunk scores and values at 55-70 (they first touch each chunk's
keys, queries and values), and the passes over keys and queries (max, exp2, running sum,
division) took ~15% of the time. C = 32 ran 5-7% faster than 64 (48 and 40 in between, 96 and 128
slower); at 64, skipping the zero upper half of the scores (two value products per chunk) did not
pay for the extra calls.

In-place updates of fresh tensors only: the caller takes this path when nothing needs a gradient
(``mixers.lightnet.lightnet_attention``); the batched form serves autograd. Same safety checks, and
the same None (the group is outside the safe range, ``o`` untouched) as ``additive_group``.
"""

from __future__ import annotations

import math

import torch

from mixers.cores.chunkwise_lightnet import SAFE_NATS
from mixers.cores.cumsum import BLOCK, blocked_cumsum

Tensor = torch.Tensor
LOG2E = 1 / math.log(2)
CHUNK = 32
"""Steps per chunk. Half the batched form's 64: the in-chunk products (half of them zeros) shrink
more than the state products lose (see the module docstring)."""


def running_sum(ke: Tensor, into: Tensor, scale: float) -> Tensor:
    """``(into + cumsum(ke, 1)) / scale`` for ``ke [B, L, H, F]`` (L a multiple of BLOCK) and ``into [B, 1, H, F]``."""
    D = blocked_cumsum(ke, 1)
    return torch.add(into / scale, D, alpha=1 / scale, out=D)

def additive_group_inplace(q: Tensor, u: Tensor, v: Tensor, S: Tensor, z: Tensor | None, scale: float, o: Tensor
                           ) -> tuple[Tensor, Tensor] | None:
    """``additive_group`` without autograd: ``q, u [B, L, H, F]``, ``v [B, L, H, V]``, the state
    ``S [B, H, F, V]`` (not modified) and ``z [B, 1, H, F]`` (None: nothing seen yet) in the work
    dtype; the output is written to ``o [B, L, H, V]``. Returns the new ``(S, z)``, or None."""
    B, L, H, Fk = q.shape
    work = S.dtype
    r = u.amax(1, keepdim=True).to(work)  # [B, 1, H, F]: the group's reference, its largest logit
    into = torch.zeros_like(r) if z is None else (z.to(work) - r).exp()  # exp(z_before - r)
    if not bool(into.max() < math.exp(SAFE_NATS)):
        return None
    # exp(u - r) <= 1, padded with zero keys to whole blocks of the running sum.  [B, L + pad, H, F]
    # As 2^((u - r) log2 e): torch's exp2 runs about 2.5x faster than its exp on CPU (AVX512, fp32).
    ke = u.new_empty((B, -(-L // BLOCK) * BLOCK, H, Fk), dtype=work)
    ke[:, L:] = 0
    torch.add(r * -LOG2E, u, alpha=LOG2E, out=ke[:, :L]).exp2_()
    D = running_sum(ke, into, scale)[:, :L]
    ke = ke[:, :L]
    if not bool(D[:, 0].amin() * scale > math.exp(-SAFE_NATS)):  # D grows along the group: its first row is least
        return None
    z_last = (D[:, -1:] * scale).log_() + r  # [B, 1, H, F]
    qe = torch.div(q, D, out=D)  # q exp(r - z) F^-1/2, in D's memory
    vw = v.to(work)
    S = S * into[:, 0, :, :, None]  # [B, H, F, V], the carried state in the group's frame
    for b in range(B):
        state = S[b]  # [H, F, V], updated in place
        for qn, kn, vn, on in zip(*(_chunks(x[b]) for x in (qe, ke, vw, o))):  # [H, c, F], [H, c, V]
            kt = kn.transpose(1, 2)  # [H, F, c]
            scores = torch.bmm(qn, kt).tril_()  # [H, c, c]
            y = torch.bmm(scores, vn).baddbmm_(qn, state)  # [H, c, V]: inside the chunk, then the state read
            on.copy_(y)
            state.baddbmm_(kt, vn)
    # Back in fla's form: normalised by exp(z), in the frame of the last z.
    S.mul_((r - z_last).exp()[:, 0, :, :, None])
    return S, z_last


def _chunks(x: Tensor) -> list[Tensor]:
    """``x [L, H, F]`` as a list of ``[H, c, F]`` views, chunks of CHUNK steps (the last one may be shorter)."""
    full = x.shape[0] // CHUNK * CHUNK
    views = list(x[:full].unflatten(0, (-1, CHUNK)).transpose(1, 2).unbind(0))
    return views + [x[full:].transpose(0, 1)] if full < x.shape[0] else views
