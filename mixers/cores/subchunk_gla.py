"""The stable path of ``mixers.cores.chunkwise_gla``: one chunk's intra-chunk attention under strong decays.

Gated linear attention inside a chunk needs, for every pair j <= i, the decay exp(G_i - G_j)
with G the cumulative log decay. The fast path factorizes it as exp(G_i - G_0) exp(G_0 - G_j),
which overflows fp32 once a chunk's decay spread passes about 88 (GSA's and LightNet's gates
can reach hundreds). Here every exponential has a non-positive argument (for decays <= 0):

- the chunk of C rows is split into sub-chunks of 16;
- pairs in different sub-chunks (key in sub-chunk b, query in a later one) use the end r of
  sub-chunk b as reference: exp(G_i - r) exp(r - G_j), both factors <= 1, one matmul per b;
- pairs inside one sub-chunk are summed directly in log space: [16, 16, K] per sub-chunk.

The same split serves decays on the value side: o_i = sum_j A_ij v_j exp(Gv_i - Gv_j).
Shapes: ``[..., C, K]`` with any leading dimensions (batch, heads, chunks); n = C / 16, c = 16.
"""

from __future__ import annotations

import torch

SUB_CHUNK = 16


class SubChunkMasks:
    def __init__(self, C: int, device: torch.device):
        c = SUB_CHUNK
        pos, sub = torch.arange(C, device=device), torch.arange(c, device=device)
        self.sub_causal = sub[:, None] >= sub[None, :]  # [c, c]
        # later[b, i]: row i lies in a sub-chunk after sub-chunk b.  [n, C, 1]
        self.later = (pos[None, :] // c > torch.arange(C // c, device=device)[:, None])[..., None]


def stable_scores(q: torch.Tensor, k: torch.Tensor, G: torch.Tensor, masks: SubChunkMasks):
    """Causal scores A_ij = q_i^T diag(exp(G_i - G_j)) k_j of chunks ``[..., C, K]``.

    Returns ``A_off [..., C, C]`` (pairs whose key lies in an earlier sub-chunk) and
    ``A_diag [..., n, c, c]`` (causal pairs inside each sub-chunk).
    """
    *lead, C, K = q.shape
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


def stable_values(A_off: torch.Tensor, A_diag: torch.Tensor | None, v: torch.Tensor, Gv: torch.Tensor,
                  masks: SubChunkMasks) -> torch.Tensor:
    """o_i = sum_{j<=i} A_ij v_j exp(Gv_i - Gv_j) for chunks ``v [..., C, V]``.

    ``A_off`` and ``A_diag`` as ``stable_scores`` returns them, or ``A_off`` the full causal
    matrix and ``A_diag`` None.
    """
    *lead, C, V = v.shape
    c = SUB_CHUNK
    n = C // c
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
