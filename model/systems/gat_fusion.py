"""Graph-attention fusion of speech and text: the MDAT-style system of arXiv 2506.02088 (Interspeech 2025
SER challenge; ``shared/papers/gat-fusion-mdat-summary.md``), selectable in place of ``U = [S; E]`` + mixer.

    s = W_s S (+ Emb(F0 bin)),  t = W_t E                             per-modality projection (SERModel)
    s <- LN(s + drop(GAT_s(s))),  t <- LN(t + drop(GAT_t(t)))          graph attention over time steps
    s' = LN(s + drop(MHA(s, t, t))),  t' = LN(t + drop(MHA(t, s, s)))  co-attention, speech <-> text
    s'' = Layer_s^depth(s'),  t'' = Layer_t^depth(t')                  a transformer layer per modality
    c = [pool_s(s''); pool_t(t'')]                                     attentive pooling (learned query)
    logits = SwiGLU(drop(LN(c)))                                       SwiGLU classifier

GAT (Velickovic et al., ICLR 2018), per head k with W^k in R^{F x D}, a^k = [a_1; a_2] in R^{2F}:
    e_ij = LeakyReLU_0.2(a^T [W h_i || W h_j]) = LeakyReLU_0.2(a_1 . W h_i + a_2 . W h_j)
    alpha_ij = softmax_{j in N(i)} e_ij,      h'_i = ||_k ELU(sum_{j in N(i)} alpha^k_ij W^k h_j)
The graph (the summary does not fix it): nodes are one modality's time steps; N(i) holds i itself
and every valid step j with |i - j| <= ``window``, or every valid step when ``window`` is None (a
complete graph, the default). Padded steps are never neighbours and their outputs are 0. Scores are
materialised, [B, H, L, L]: quadratic in length, like ``sa:naive``.

Our reading of what the summary leaves open: one GAT layer per modality; "a transformer layer" is
``model.ser.Block`` (pre-norm residual around the configured mixer, default SA, plus a feed-forward
sublayer of ``ffn`` x D, 4 when ``ffn`` is 0), ``depth`` of them, run on equal-length groups as the
concat model does, so any mixer sees only its own utterance; the F0 embedding (256 mel bins over
50-1100 Hz, bin 0 unvoiced, see ``model.f0``) is added to the speech projection by ``SERModel``,
which owns the projections too, so this module starts from [B, M, D] and [B, N, D]; the SwiGLU
classifier is ``W_3 (SiLU(W_1 x) * W_2 x)`` with hidden width D. Without text the co-attention and
the text branch are left out. Weighted cross-entropy is the training recipe's (``class_weighted``,
on by default for this fusion).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.ser import AttentionPooling, Block, SERConfig, mix_groups


def lengths_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """[B] -> [B, size], True on valid steps."""
    return torch.arange(size, device=lengths.device)[None] < lengths[:, None]


class GraphAttention(nn.Module):
    """One multi-head GAT layer over the time steps of each sequence; [B, L, D] -> [B, L, D]."""

    def __init__(self, width: int, heads: int, window: int | None = None, negative_slope: float = 0.2):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} must be divisible by heads {heads}")
        if window is not None and window < 0:
            raise ValueError(f"expected window >= 0 or None, got {window}")
        self.heads, self.window, self.negative_slope = heads, window, negative_slope
        self.proj = nn.Linear(width, width, bias=False)  # the H per-head W^k, stacked
        self.att_src = nn.Parameter(torch.randn(heads, width // heads) * (heads / width) ** 0.5)  # a_1
        self.att_dst = nn.Parameter(torch.randn(heads, width // heads) * (heads / width) ** 0.5)  # a_2

    def neighbours(self, mask: torch.Tensor) -> torch.Tensor:
        """[B, L] valid steps -> [B, 1, L, L] adjacency N(i) (self-loops always, so no row is empty)."""
        L = mask.shape[1]
        steps = torch.arange(L, device=mask.device)
        near = (steps[:, None] - steps[None, :]).abs() <= (self.window if self.window is not None else L)
        return (near[None] & mask[:, None, :] | torch.eye(L, dtype=torch.bool, device=mask.device))[:, None]

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L, D = h.shape
        # [B, L, H, F]
        wh = self.proj(h).view(B, L, self.heads, D // self.heads)
        # [B, H, L]: a_1 . W h_i and a_2 . W h_j
        src, dst = torch.einsum("blhf,hf->bhl", wh, self.att_src), torch.einsum("blhf,hf->bhl", wh, self.att_dst)
        # [B, H, L, L]
        e = F.leaky_relu(src[..., :, None] + dst[..., None, :], self.negative_slope)
        alpha = torch.softmax(e.masked_fill(~self.neighbours(mask), float("-inf")), dim=-1)
        # [B, L, H, F] -> [B, L, D]
        out = F.elu(torch.einsum("bhij,bjhf->bihf", alpha, wh)).reshape(B, L, D)
        return out.masked_fill(~mask[..., None], 0.0)


class SwiGLU(nn.Module):
    """Shazeer (2020): ``W_3 (SiLU(W_1 x) * W_2 x)``; [..., d_in] -> [..., d_out]."""

    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__()
        self.gate, self.up = nn.Linear(d_in, hidden, bias=False), nn.Linear(d_in, hidden, bias=False)
        self.down = nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Branch(nn.Module):
    """One modality's GAT, transformer layers and pooling."""

    def __init__(self, config: SERConfig, depth: int, device: str | torch.device | None):
        super().__init__()
        D = config.width
        self.gat = GraphAttention(D, config.heads, config.gat_window)
        self.gat_norm = nn.LayerNorm(D)
        layer = SERConfig(**{**config.to_dict(), "ffn": config.ffn or 4})
        self.blocks = nn.ModuleList(Block(layer, device) for _ in range(depth))
        self.norm = nn.LayerNorm(D)
        self.pool = AttentionPooling(D)
        self.dropout = nn.Dropout(config.dropout)

    def graph(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.gat_norm(x + self.dropout(self.gat(x, mask)))

    def finish(self, x: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Transformer layers (unpadded groups), then attentive pooling: [B, L, D] -> [B, D]."""
        return self.pool(mix_groups(self.blocks, self.norm, x, lengths), mask)[0]


class GATFusion(nn.Module):
    """Everything after the projections: [B, M, D], [B, N, D] -> logits. ``SERModel`` holds it for ``fusion="gat"``."""

    def __init__(self, config: SERConfig, depth: int, device: str | torch.device | None = None):
        super().__init__()
        D = config.width
        self.depth = depth
        self.speech = Branch(config, depth, device)
        pooled = D
        if config.text_dim is not None:
            self.text = Branch(config, depth, device)
            self.speech_reads_text = nn.MultiheadAttention(D, config.heads, config.dropout, batch_first=True)
            self.text_reads_speech = nn.MultiheadAttention(D, config.heads, config.dropout, batch_first=True)
            self.speech_co_norm, self.text_co_norm = nn.LayerNorm(D), nn.LayerNorm(D)
            pooled = 2 * D
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Sequential(nn.LayerNorm(pooled), nn.Dropout(config.dropout),
                                  SwiGLU(pooled, D, config.classes))
        self.kernel = self.speech.blocks[0].mixer.kernel if depth else config.kernel

    def forward(self, s: torch.Tensor, speech_lengths: torch.Tensor, t: torch.Tensor | None = None,
                text_lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Projected speech [B, M, D] and text [B, N, D] (padding may hold anything) -> logits [B, C]."""
        s = s[:, : int(speech_lengths.max())]
        s_mask = lengths_mask(speech_lengths, s.shape[1])
        s = self.speech.graph(s.masked_fill(~s_mask[..., None], 0.0), s_mask)
        if t is None:
            return self.head(self.speech.finish(s, speech_lengths, s_mask))
        t = t[:, : int(text_lengths.max())]
        t_mask = lengths_mask(text_lengths, t.shape[1])
        t = self.text.graph(t.masked_fill(~t_mask[..., None], 0.0), t_mask)
        s_co = self.speech_reads_text(s, t, t, key_padding_mask=~t_mask, need_weights=False)[0]
        t_co = self.text_reads_speech(t, s, s, key_padding_mask=~s_mask, need_weights=False)[0]
        s = self.speech_co_norm(s + self.dropout(s_co)).masked_fill(~s_mask[..., None], 0.0)
        t = self.text_co_norm(t + self.dropout(t_co)).masked_fill(~t_mask[..., None], 0.0)
        c = torch.cat([self.speech.finish(s, speech_lengths, s_mask), self.text.finish(t, text_lengths, t_mask)], -1)
        return self.head(c)
