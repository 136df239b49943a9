"""LightNet's additive attention, chunkwise, as plain (ungated) linear attention in one frame per group.

LightNet (Qin et al., 2024, "You Only Scan Once", its additive decay) reads, per head and key channel,

    o_t = F^-1/2 sum_{j<=t} q_t^T diag(exp(u_j - z_t)) v_j,     z_t = log sum_{i<=t} exp(u_i)

fla writes it as gated linear attention (k_t = exp(u_t - z_t), g_t = z_{t-1} - z_t), which needs the
cumulative gates and their exponentials on both sides of every score. Here the gates never appear.
Over a group of steps take one reference r per channel (the group's largest logit) and

    ke_j = exp(u_j - r) <= 1,    D_i = exp(z_i - r) = exp(z_before - r) + sum_{j<=i in the group} ke_j,
    o_i  = F^-1/2 (q_i / D_i)^T [ S' + sum_{j<=i} ke_j v_j^T ]

with ``S' = exp(z_before - r) S`` the carried state (fla's, normalised by exp(z)) in the group's frame.
That is ungated linear attention with queries ``q / D``: chunks of C steps give scores inside each
chunk, and the state each chunk sees is a running sum of the chunks' ``ke^T V`` before it. Every
product (scores, values, per-chunk sums, every chunk's read of its state) is one batched matmul
over the group, the chunk-to-chunk sum of [H, F, V] states one cumulative sum. Five passes over keys
and queries (shift, exp, cumulative sum, division, chunk copy) replace the log-cumsum-exp, the gates,
their cumulative sums and four exponentials. This batched form is the one autograd follows; when
nothing needs a gradient, ``mixers.cores.inplace_lightnet`` runs the same equations chunk by chunk in place.

Safety: every factor is at most 1 except ``1 / D_i`` and ``exp(z_before - r)``, which stay below
``e^SAFE_NATS`` while z moves by less than that across the group and the group's largest logit is
not that far below the past's total. Groups where that fails (logits spread by tens of nats) return
None, and the caller takes the gated path for them. The state is fla's: ``S [B, H, F, V]``
normalised by exp(z) and ``z [B, 1, H, F]``, both fp32 (fp64 inputs stay fp64).
"""

from __future__ import annotations

import math

import torch

from mixers.cores.chunk_layout import from_chunks, to_chunks

CHUNK = 64
GROUP = 1024
"""Tokens whose chunks are batched at once: bounds the per-chunk states kept for the batched reads."""
SAFE_NATS = 60.0

Tensor = torch.Tensor


def additive_group(q: Tensor, u: Tensor, v: Tensor, S: Tensor, z: Tensor | None, scale: float, o: Tensor
                   ) -> tuple[Tensor, Tensor] | None:
    """One group of steps: ``q, u [B, L, H, F]``, ``v [B, L, H, V]``, the state ``S [B, H, F, V]`` and
    ``z [B, 1, H, F]`` (None: nothing seen yet) in the work dtype; the output is written to
    ``o [B, L, H, V]``.

    Returns the new ``(S, z)``, or None (``o`` untouched) when the group is outside the safe range
    (see the module docstring).
    """
    B, L, H, Fk = q.shape
    V, work = v.shape[-1], S.dtype
    N = -(-L // CHUNK)
    # The group's reference: its largest logit per channel. It cancels exactly, so it stays out of the graph.
    r = u.detach().amax(1, keepdim=True).to(work).transpose(1, 2).unsqueeze(0)  # [1, B, H, 1, F]
    # exp(u - r) <= 1, chunk-major [N, B, H, C, F]; padded steps have keys exactly 0.
    ke = to_chunks(u, CHUNK, work, torch.sub, r, float("-inf")).exp_()
    # D_i = exp(z_i - r) = exp(z_before - r) + the sum of ke up to i: a cumulative sum within chunks
    # plus each chunk's offset.  [N, B, H, C, F]
    D = ke.cumsum(-2)
    into = torch.zeros_like(r) if z is None else (z.transpose(1, 2).to(work) - r).exp()  # [1, B, H, 1, F]
    if not bool(into.max() < math.exp(SAFE_NATS)):
        return None
    offsets = torch.cat((into, D[:-1, ..., -1:, :])).cumsum(0)  # [N, B, H, 1, F]
    D = D + offsets
    if not bool(D[0, ..., 0, :].amin() > math.exp(-SAFE_NATS)):  # D grows along the group: its first row is least
        return None
    z_last = D[-1, ..., -1:, :].log() + r[0]  # [B, H, 1, F]
    # q exp(r - z) F^-1/2: the scale rides on the queries, so on every product below.
    D = D / scale
    qe = to_chunks(q, CHUNK, work, torch.div, D)
    del D, offsets
    vc = to_chunks(v, CHUNK, work)  # [N, B, H, C, V]
    A = (qe @ ke.transpose(-1, -2)).tril_()  # [N, B, H, C, C]
    # States seen by each chunk, in the group's frame: the carried state, then running sums of each
    # chunk's ke^T V (the last one is the state after the group).  [N + 1, B, H, F, V]
    start = S * into[0].transpose(-1, -2)
    states = torch.cat((start.unsqueeze(0), ke.transpose(-1, -2) @ vc)).cumsum(0)
    del ke
    # All reads at once; the state after the group, back in fla's form (normalised by exp(z), in the
    # frame of the last z); then the intra-chunk part.  [N*B*H, C, V]
    out = qe.flatten(0, 2) @ states[:-1].flatten(0, 2)
    S = states[-1] * (r[0] - z_last).exp().transpose(-1, -2)
    del qe, states
    out = out + A.flatten(0, 2) @ vc.flatten(0, 2)
    del A, vc
    from_chunks(out.view(N, B, H, CHUNK, V), o)
    return S, z_last.transpose(1, 2)
