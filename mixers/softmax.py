"""Softmax attention (Vaswani et al., 2017), the paper's SA baseline.

    o = softmax(q k^T / sqrt(d) [+ causal mask]) v,   q, k, v = x W_q, x W_k, x W_v;   y = o W_o

Two kernels share one set of parameters (``q_proj``, ``k_proj``, ``v_proj``, ``o_proj``, no
biases), so one state dict serves both:

- ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention``; on GPU PyTorch picks a flash,
  memory-efficient or cuDNN kernel, so memory stays O(L).
- ``naive``: scores materialized, softmax, then values: the O(L^2) memory the paper measured
  (about 12 GB at 400 s, hidden 1024, 4 heads, fp32).

Configuration used by the paper's benchmark: hidden 1024, 4 heads. ``causal`` defaults to False:
SER classifies whole utterances, so every frame may attend to every other.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mixers.cost import Cost, linear_flops

KERNELS = ("sdpa", "naive")


class SoftmaxAttention(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, kernel: str = "sdpa", causal: bool = False):
        super().__init__()
        if kernel not in KERNELS:
            raise ValueError(f"softmax attention kernel must be one of {KERNELS}, got {kernel!r}")
        self.hidden_size, self.num_heads, self.head_dim = hidden_size, num_heads, hidden_size // num_heads
        self.kernel, self.causal = kernel, causal
        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.k_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.o_proj = nn.Linear(hidden_size, hidden_size, bias=False)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        # [B, T, H*K] -> [B, H, T, K]
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.q_proj(x)), self._heads(self.k_proj(x)), self._heads(self.v_proj(x))
        if self.kernel == "sdpa":
            o = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        else:
            o = naive_attention(q, k, v, self.causal)
        # [B, H, T, K] -> [B, T, H*K]
        return self.o_proj(o.transpose(1, 2).flatten(-2))


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """Scores and probabilities both materialized as [B, H, T, T], as a textbook transformer does."""
    scores = torch.matmul(q, k.transpose(-1, -2)).mul_(1.0 / math.sqrt(q.shape[-1]))
    if causal:
        length = q.shape[-2]
        mask = torch.ones(length, length, dtype=torch.bool, device=q.device).triu_(1)
        scores.masked_fill_(mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, v)


def build(kernel: str, hidden_size: int, num_heads: int, causal: bool = False) -> SoftmaxAttention:
    return SoftmaxAttention(hidden_size, num_heads, kernel=kernel, causal=causal)


def cost(length: int, hidden_size: int, num_heads: int, batch: int, dtype_bytes: int, kernel: str,
         causal: bool = False) -> Cost:
    B, T, D, H = batch, length, hidden_size, num_heads
    attention_fraction = 0.5 if causal else 1.0
    # q k^T and p v: 2 * (2 B T T D) multiply-adds; softmax ~5 ops per score (max, sub, exp, sum, div).
    attention = attention_fraction * (4.0 * B * T * T * D + 5.0 * B * H * T * T)
    flops = 4 * linear_flops(B, T, D, D) + attention
    token_bytes = B * T * D * dtype_bytes
    if kernel == "naive":
        # Peak inside softmax: scores and probabilities, each [B, H, T, T], beside q, k, v and
        # the contiguous copy matmul makes of the transposed head view.
        activation = 4 * token_bytes + 2 * B * H * T * T * dtype_bytes
    else:
        # q, k, v, the attention output and its [B, T, H*K] copy for o_proj; fused kernels keep
        # only O(T) scratch beyond that.
        activation = 5 * token_bytes
    saved, backward = _train_bytes(B, T, D, H, dtype_bytes, kernel)
    return Cost(flops=flops, activation_bytes=activation, state_bytes=2 * token_bytes,
                weight_bytes=4 * D * D * dtype_bytes, saved_bytes=saved, backward_bytes=backward)


def _train_bytes(B: int, T: int, D: int, H: int, e: int, kernel: str) -> tuple[int, int]:
    """Training step, counted from autograd's saved tensors (CPU, torch 2.13; matches the probe
    within 10% from 64 to 1024 wide at 4,999 frames).

    Both kernels save q, k, v and o_proj's input, and the caller holds y: 5 token tensors.
    ``naive`` also saves the probabilities [B, H, T, T]; its backward peaks in the softmax's
    backward, where the probabilities, their gradient and the scores' gradient (three [B, H, T, T])
    are alive with q, k, y and dv (o's copy and v are freed by then: -1 token) and dW_o.
    ``sdpa`` saves the log-sum-exp [B, H, T] too; its backward holds dO and dq, dk, dv (4 tokens)
    and dW_o.
    """
    token, scores = B * T * D * e, B * H * T * T * e
    if kernel == "naive":
        return 5 * token + scores, 2 * scores - token + D * D * e
    return 5 * token + B * H * T * 4, 4 * token + D * D * e
