"""The chunk-to-chunk recurrence of the chunkwise delta rule (``mixers.cores.chunkwise_delta``).

Within a group of chunks everything but the products with the state is batched over chunks
(``chunkwise_delta._group``); what is left runs chunk after chunk here: from each chunk's
pseudo-values ``U~`` and ``W = T K_a`` (see ``chunkwise_delta``'s docstring for the chunk form),

    U = U~ - W S_a,    S_C = e^{G_C - G_b} (e^{G_b} S_0 + (K e^{G_b - G})^T U),    Out = A_qk U + Q_a S_a,

with ``S_a`` the state seen from reference a and the update through reference b. Two forms: one
that autograd can follow (new tensors each chunk, the outputs in one batched product at the end)
and one without autograd that updates its buffers in place.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def _across_chunks(U: Tensor, W: Tensor, q_a: Tensor, A_qk: Tensor, k_b: Tensor, into_a: Tensor | None,
                   into_b: Tensor | None, out_of_b: Tensor | None, S: Tensor) -> tuple[Tensor, Tensor]:
    """The chunk-to-chunk recurrence: ``U = U~ - W S_a`` and the state after each chunk, then
    ``Out = A_qk U + Q_a S_a`` for all chunks at once. ``S_a = e^{G_a} S_0`` is the state seen from
    reference a (``into_a``; None for the chunk start), the update goes through reference b.

    U~ [N, B, H, C, V], W, q_a, k_b: [N, B, H, C, K]; A_qk [N, B, H, C, C]; factors
    [N, B, H, 1, K]; S: [B, H, K, V]. Returns Out [N, B, H, C, V] and the final state.
    """
    B, H, K, V = S.shape
    k_b = k_b.transpose(-1, -2).flatten(1, 2)  # [N, B*H, K, C]
    # Per-chunk factors of the state, transposed to multiply its K rows: [N, B*H, K, 1].
    into_a, into_b, out_of_b = (None if x is None else x.transpose(-1, -2).flatten(1, 2)
                                for x in (into_a, into_b, out_of_b))
    U, W = U.flatten(1, 2), W.flatten(1, 2)  # [N, B*H, C, V], [N, B*H, C, K]
    # Only the state's own recurrence runs chunk by chunk (few, small ops: they dominate the
    # per-token overhead); the states seen from reference a are kept for one batched output product.
    S = S.flatten(0, 1)
    states, us = [], []
    for n in range(U.shape[0]):
        S_a = S if into_a is None else S * into_a[n]
        states.append(S_a)
        u = torch.baddbmm(U[n], W[n], S_a, alpha=-1)
        us.append(u)
        S = torch.baddbmm(S_a if into_b is None else S * into_b[n], k_b[n], u)
        if out_of_b is not None:
            S = S * out_of_b[n]
    # Out = A_qk U + Q_a S_a, all chunks at once: [N*B*H, C, V]
    Out = torch.baddbmm(q_a.flatten(0, 2) @ torch.stack(states).flatten(0, 1), A_qk.flatten(0, 2),
                        torch.stack(us).flatten(0, 1))
    return Out.unflatten(0, (-1, B, H)), S.unflatten(0, (B, H))


def _across_chunks_in_place(UO: Tensor, WQ: Tensor, A_qk: Tensor, k_b: Tensor, into_a: Tensor | None,
                            into_b: Tensor | None, out_of_b: Tensor | None, S: Tensor) -> tuple[Tensor, Tensor]:
    """``_across_chunks`` without autograd, updating ``UO`` and ``S`` in place.

    UO = [U~; 0]: [N, B, H, 2C, V] and WQ = [W; Q_a]: [N, B, H, 2C, K], so that one product per
    chunk, ``UO -= WQ S_a``, gives ``U`` over ``-Q_a S_a`` (no [N, K, V] stack of states to keep);
    S: [B, H, K, V], a private copy (see the caller). Returns Out [N, B, H, C, V] and the final state.
    """
    B, H, K, V = S.shape
    C = UO.shape[-2] // 2
    k_b = k_b.transpose(-1, -2).flatten(1, 2)  # [N, B*H, K, C]
    into_a, into_b, out_of_b = (None if x is None else x.transpose(-1, -2).flatten(1, 2)
                                for x in (into_a, into_b, out_of_b))  # [N, B*H, K, 1]
    UO, WQ, S = UO.flatten(1, 2), WQ.flatten(1, 2), S.flatten(0, 1)  # [N, B*H, 2C, V or K], [B*H, K, V]
    S_a = S.new_empty(S.shape) if into_a is not None else S
    for n in range(UO.shape[0]):
        if into_a is not None:  # e^{G_a} S_0; for a = the chunk start, S_0 itself
            torch.mul(S, into_a[n], out=S_a)
        u = UO[n].baddbmm_(WQ[n], S_a, alpha=-1)[:, :C]
        # S_C = e^{G_C - G_b} (e^{G_b} S_0 + (K e^{G_b - G})^T U)
        if into_b is None:  # b = a: the update goes into S_a's buffer, which the state then swaps with
            S_a.baddbmm_(k_b[n], u)
            S, S_a = S_a, S
        else:
            S.mul_(into_b[n]).baddbmm_(k_b[n], u)
        if out_of_b is not None:
            S.mul_(out_of_b[n])
    # Out = A_qk U - (-Q_a S_a), all chunks at once: [N*B*H, C, V]
    Out = torch.baddbmm(UO[:, :, C:].flatten(0, 1), A_qk.flatten(0, 2), UO[:, :, :C].flatten(0, 1), beta=-1)
    return Out.unflatten(0, (-1, B, H)), S.unflatten(0, (B, H))
