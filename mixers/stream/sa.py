"""Streaming softmax attention (``mixers.softmax``, kernels ``sdpa`` and ``naive``): a KV cache.

    k_t, v_t = x_t W_k, x_t W_v  appended to the cache;   q_t = x_t W_q
    o_t = softmax(q_t K_{<=t}^T / sqrt(d)) V_{<=t},       y_t = o_t W_o

Streaming is causal: a frame attends to the frames seen so far. A module built with
``causal=False`` (the SER default, every frame seeing the whole utterance) has no streaming
form that equals its parallel output; its stepper computes the causal attention with the same
weights, which equals the parallel output of the module with ``causal=True``. The cache grows
with T: 2 B T D elements in the activations' dtype. The ``sdpa`` stepper attends with
``scaled_dot_product_attention`` (one query row against the cache), ``naive`` materializes the
row of scores, as the parallel kernels do.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from mixers.softmax import naive_attention
from mixers.stream.base import Stepper
from mixers.stream.kv_cache import KVCache


class SoftmaxAttentionStepper(Stepper):
    def __init__(self, module):
        super().__init__(module)
        self.num_heads, self.head_dim = module.num_heads, module.head_dim

    def _qkv(self, x: Tensor) -> list[Tensor]:
        # [B, T, D] -> three [B, H, T, K] (one matmul for the three projections)
        m = self.module
        return [y.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)
                for y in self.fused_linear("qkv", [m.q_proj, m.k_proj, m.v_proj])(x)]

    def _init(self, batch, device, dtype) -> KVCache:
        shape = (batch, self.num_heads, self.head_dim)
        return KVCache.empty([shape, shape], [dtype, dtype], device)

    def _prefill(self, x: Tensor) -> KVCache:
        m = self.module
        H, K = self.num_heads, self.head_dim
        # Only the keys and values are kept: [B, H, T, K]
        k = m.k_proj(x).unflatten(-1, (H, K)).transpose(1, 2)
        v = m.v_proj(x).unflatten(-1, (H, K)).transpose(1, 2)
        return KVCache.of([k, v])

    def _step(self, state: KVCache, x: Tensor) -> tuple[Tensor, KVCache]:
        B = x.shape[0]
        q, k, v = self._qkv(x[:, None])  # [B, H, 1, K]
        state = state.append([k[:, :, 0], v[:, :, 0]])
        keys, values = state.tensors()  # [B, H, t + 1, K]: every cached frame is in the past
        if self.module.kernel == "naive":
            o = naive_attention(q, keys, values, causal=False)
        else:
            o = F.scaled_dot_product_attention(q, keys, values)
        # [B, H, 1, K] -> [B, D]
        return self.module.o_proj(o.reshape(B, self.hidden_size)), state


def make(module) -> SoftmaxAttentionStepper:
    return SoftmaxAttentionStepper(module)
