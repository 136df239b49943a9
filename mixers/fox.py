"""Forgetting Transformer, FoX (Lin et al., 2025, "Forgetting Transformer: Softmax Attention with a
Forget Gate"), as fla's ``ForgettingAttention`` layer computes it.

    f_t = logsigmoid(x_t W_f + b_f)                     one scalar forget gate per head, in fp32
    F_i = sum_{t<=i} f_t                                cumulative log forget
    o_i = sum_{j<=i} softmax_j(q_i k_j / sqrt(K) + F_i - F_j) v_j
    y   = o W_o,       q, k, v = x W_q, x W_k, x W_v

Configuration the paper ran: hidden 1024, 4 heads (head dim 256), everything else at fla 0.6's
defaults: ``num_kv_heads=None`` (no GQA), ``qkv_bias=False``, ``qk_norm=False``,
``use_output_gate=False``, ``window_size=None`` (the layer only hands it to its decoding cache).

Kernels (one set of parameters, so one state dict serves all):

- ``fla``: ``fla.layers.ForgettingAttention`` itself (Triton; CUDA or the Triton interpreter).
- ``torch``: our PyTorch twin around ``mixers.cores.blockwise_fox``: queries and keys in blocks with an
  online softmax, never an L x L matrix (compute quadratic, memory linear, forward and backward);
  key blocks whose forget bias flushes every weight to 0 are skipped without changing the result.
- ``flex``: the twin's projections around ``mixers.cores.flex_fox``, PyTorch's FlexAttention compiled
  with the forget bias as a ``score_mod`` (no L x L matrix; CUDA, or CPU for inference only).
- ``reference``: the twin's projections around fla's ``naive_forgetting_attn`` (L x L in memory).

``auto`` on CUDA picks ``fla`` where fla's kernel fits the device's shared memory, else ``flex``
(``auto_kernel``; fla 0.6 does not fit an H100/H200 at head size 256: ``mixers.fla_memory.fox_tiles``).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from mixers import fla_memory
from mixers.cores.blockwise_fox import BLOCK_K, BLOCK_Q, forgetting_attention
from mixers.cores.flex_fox import backward_available, flex_forgetting_attention
from mixers.cost import Cost, fitted_train, linear_flops
from mixers.fla_memory.fox_tiles import fla_fits, shared_optin

KERNELS = ("fla", "torch", "flex", "reference")
CORES = {"torch": "blockwise", "flex": "flex", "reference": "naive"}


class ForgettingAttentionTwin(nn.Module):
    """Same parameters as ``fla.layers.ForgettingAttention``; ``core`` picks blockwise, FlexAttention or
    fla's naive op."""

    def __init__(self, hidden_size: int = 1024, num_heads: int = 4, qkv_bias: bool = False,
                 use_output_gate: bool = False, core: str = "blockwise",
                 block_q: int = BLOCK_Q, block_k: int = BLOCK_K):
        super().__init__()
        if core not in CORES.values():
            raise ValueError(f"core must be one of {tuple(CORES.values())}, got {core!r}")
        self.hidden_size, self.num_heads, self.head_dim = hidden_size, num_heads, hidden_size // num_heads
        self.core, self.block_q, self.block_k = core, block_q, block_k
        if core == "naive":
            # imported here, not in forward: importing fla takes seconds and would land in timings
            from fla.ops.forgetting_attn.naive import naive_forgetting_attn

            self._naive_op = naive_forgetting_attn
        self.use_output_gate = use_output_gate
        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=qkv_bias)
        self.k_proj = nn.Linear(hidden_size, hidden_size, bias=qkv_bias)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=qkv_bias)
        self.f_proj = nn.Linear(hidden_size, num_heads, bias=True)
        if use_output_gate:
            self.g_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.o_proj = nn.Linear(hidden_size, hidden_size, bias=False)

    def backward_available(self, device: str | torch.device) -> bool:
        """Whether this core can be trained on ``device`` (FlexAttention: not on CPU)."""
        return self.core != "flex" or backward_available(device)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        # [B, T, H*K] -> [B, H, T, K], contiguous so key blocks are plain strided matrices
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.hidden_size:
            raise ValueError(f"expected input [B, T, {self.hidden_size}], got {tuple(x.shape)}")
        # [B, H, T]: log forget gates in fp32, as fla computes them
        g = F.logsigmoid(self.f_proj(x).float()).transpose(1, 2)
        # q, k, v live only for this call, so o_proj below runs after they are freed
        o = self._attend(self._heads(self.q_proj(x)), self._heads(self.k_proj(x)),
                         self._heads(self.v_proj(x)), g)
        # [B, T, H, V] -> [B, T, H*V]
        o = o.flatten(-2)
        if self.use_output_gate:
            o = self.g_proj(x).sigmoid() * o
        return self.o_proj(o)

    def _attend(self, q, k, v, g) -> torch.Tensor:
        if self.core == "blockwise":
            return forgetting_attention(q, k, v, g, block_q=self.block_q, block_k=self.block_k)
        if self.core == "flex":
            return flex_forgetting_attention(q, k, v, g)
        # fla's reference takes [B, T, H, K] and returns fp32
        o = self._naive_op(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), g.transpose(1, 2))
        return o.to(v.dtype)


@functools.cache
def _fla_class() -> type[nn.Module]:
    from fla.layers import ForgettingAttention

    class FlaForgettingAttention(ForgettingAttention):
        """fla's layer, returning only the ``[B, T, D]`` output of its ``(o, attentions, cache)``."""

        def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
            return super().forward(hidden_states, **kwargs)[0]

    return FlaForgettingAttention


def build(kernel: str, hidden_size: int, num_heads: int, **options) -> nn.Module:
    if kernel == "fla":
        return _fla_class()(hidden_size=hidden_size, num_heads=num_heads, **options)
    if kernel not in CORES:
        raise ValueError(f"fox kernel must be one of {KERNELS}, got {kernel!r}")
    unsupported = sorted(set(options) - {"qkv_bias", "use_output_gate", "block_q", "block_k"})
    if unsupported:
        raise ValueError(
            f"the fox twin supports options qkv_bias, use_output_gate, block_q, block_k; got {unsupported}"
        )
    return ForgettingAttentionTwin(hidden_size, num_heads, core=CORES[kernel], **options)


def auto_kernel(device: torch.device, hidden_size: int, num_heads: int, dtype_bytes: int) -> str:
    """``auto`` on CUDA: fla's kernel where its tiles fit the device's shared memory, else ``flex``
    (fla's forward tiles: where fla is picked, its backward's are not checked). Without a CUDA device
    to ask, fla, as for every mixer."""
    if not torch.cuda.is_available():
        return "fla"
    return "fla" if fla_fits(hidden_size // num_heads, dtype_bytes, shared_optin(device)) else "flex"


def cost(length: int, hidden_size: int, num_heads: int, batch: int, dtype_bytes: int, kernel: str,
         block_q: int = BLOCK_Q, block_k: int = BLOCK_K) -> Cost:
    B, T, D, H = batch, length, hidden_size, num_heads
    pairs = B * H * T * (T + 1) / 2  # causal (query, key) pairs per head
    # q k^T and p v: 2 multiply-adds per pair per channel; ~6 ops per score (bias, max, sub, exp, sum,
    # rescale). An upper bound for ``torch``: key blocks it skips as underflowing are not computed.
    attention = 2.0 * pairs * 2 * (D // H) + 6.0 * pairs
    flops = 4 * linear_flops(B, T, D, D) + linear_flops(B, T, D, H) + attention
    token_bytes = B * T * D * dtype_bytes
    gate_bytes = B * T * H * 4  # fp32 forget logits, gates, cumulative sums
    if kernel == "reference":
        # scores, bias-added scores and probabilities [B, H, T, T] in fp32 beside q, k, v, fp32 o
        activation = 4 * token_bytes + B * T * D * 4 + 3 * B * H * T * T * 4
    elif kernel == "torch":
        # q, k, v head-major and o: four token tensors (the fourth also while a projection is
        # transposed); fp32 gates and key-norm bounds; one query block's fp32 scratch.
        n, m = min(block_q, T), min(max(block_k, block_q), T)
        block = B * H * n * (3 * m + 2 * (D // H)) * 4 + B * (m + n) * D * 4
        activation = 4 * token_bytes + 4 * gate_bytes + block
    elif kernel == "flex":
        activation = flex_activation_bytes(token_bytes, gate_bytes)
    else:
        activation = fla_memory.fox(B, T, D, H, dtype_bytes)
    # FoX's memory is unbounded: decoding caches every key, value and forget gate
    state = 2 * token_bytes + gate_bytes
    weights = (4 * D * D + D * H + H) * dtype_bytes
    train = {}
    if kernel == "torch":
        # Training: the blockwise core saves q, k, v and o (4 tokens) and its fp32 gates; the backward
        # holds dO, dq, dk, dv and the input's gradient besides (CPU memory probe and saved-tensor
        # hooks, fp32, 4,999 frames, widths 128 / 256 / 1024: 9.3 D + 0.6 H C elements per token;
        # predicts width 64 within 10%).
        train = fitted_train(B, T, D, dtype_bytes, weights, saved_per_token=4 * D + 0.08 * H * BLOCK_Q,
                             total_per_token=9.28 * D + 0.57 * H * BLOCK_Q)
    return Cost(flops=flops, activation_bytes=activation, state_bytes=state, weight_bytes=weights, **train)


def flex_activation_bytes(token_bytes: int, gate_bytes: int) -> int:
    """FlexAttention's forward, no T x T: q, k, v head-major and the output (four token tensors), two
    more token-sized buffers that the compiled CPU kernel allocates, fp32 forget logits, gates, their
    cumulative sum and one log-sum-exp per row. CPU, fp32, hidden 1024, 4 heads: the core alone
    peaks at 3.06 tokens above its inputs at 4,999 frames, the layer at 124.1 MB against 123.2 MB
    predicted (13.3 MB against 12.3 at 499). CUDA's Triton kernel may need the two buffers less."""
    return 6 * token_bytes + 4 * gate_bytes
