"""Kimi Delta Attention (KDA; Kimi Team, "Kimi Linear: An Expressive, Efficient Attention
Architecture", 2025): a gated delta rule whose forget gate acts per key channel.

Per head, with ``q, k`` L2-normalised over the key width ``K`` and state ``S: [K, V]``:

    S_t = (I - beta_t k_t k_t^T) diag(exp(g_t)) S_{t-1} + beta_t k_t v_t^T,      o_t = S_t^T q_t / sqrt(K)

around it, as in fla's ``fla.layers.KimiDeltaAttention``:

    q, k, v = silu(causal_depthwise_conv4(x W_{q,k,v}))          (short convolutions)
    g       = -exp(A_log) * softplus(x W_f1 W_f2 + dt_bias)        (low-rank, per head and key channel)
    beta    = sigmoid(x W_b)                                        (per head)
    y       = (RMSNorm_V(o) * weight * sigmoid(x W_g1 W_g2 + b_g)) W_o

Configuration the paper ran (fla's defaults except the two it sets): hidden size 1024, 4 heads,
head_dim 128 (so key and value widths 512, independent of the hidden size), expand_v 1, short
convolutions of width 4 without bias, allow_neg_eigval False, no gate lower bound, norm eps 1e-5.

Kernels:

- ``fla``: fla's layer itself (Triton: CUDA, or CPU under the Triton interpreter), its forward
  returning the plain ``[B, T, D]`` tensor; its state dict is fla's, key for key.
- ``torch``: our PyTorch twin with the same parameters, computing the core chunkwise
  (``mixers.cores.chunkwise_delta``): linear time and memory in ``T``, any device, fp32 or bf16.
- ``reference``: the twin's projections around fla's ``naive_recurrent_kda`` (a per-token loop),
  for timing the reference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mixers import fla_memory
from mixers.cores import chunkwise_delta as delta_chunk
from mixers.cores.segments import run_segments
from mixers.cost import Cost, fitted_train, linear_flops

KERNELS = ("fla", "torch", "reference")

SEGMENT = 2048
"""Tokens per pass through the layer (a multiple of the core's chunk size)."""
PAPER_CONFIG = dict(head_dim=128, expand_v=1.0, conv_size=4, conv_bias=False, allow_neg_eigval=False, norm_eps=1e-5)


class ShortConvolution(nn.Conv1d):
    """Causal depthwise convolution then SiLU, over ``[B, T, D]`` (fla's ``ShortConvolution`` parameters)."""

    def __init__(self, hidden_size: int, kernel_size: int, bias: bool = False):
        super().__init__(hidden_size, hidden_size, kernel_size, padding=kernel_size - 1, groups=hidden_size, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return short_convolution(x, self.weight, self.bias)


def short_convolution(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``silu(y_t)``, ``y_t = sum_j weight[:, 0, W-1-j] x_{t-j} (+ bias)``, over ``x: [B, T, D]``."""
    # Accumulated in fp32 in the [B, T, D] layout (no transposes); the taps as contiguous rows
    # [W, D] keep each multiply-add a plain vectorised pass.
    taps = weight[:, 0, :].t().float().contiguous()  # [W, D]
    width = taps.shape[0]
    y = x.float() * taps[-1]
    if bias is not None:
        y = y + bias.float()
    for shift in range(1, min(width, x.shape[1])):
        y[:, shift:].addcmul_(x[:, :-shift].float(), taps[width - 1 - shift])
    y = F.silu(y, inplace=not torch.is_grad_enabled())
    return y.to(x.dtype)


class GatedRMSNorm(nn.Module):
    """``RMSNorm(x) * weight * sigmoid(gate)`` over the last dim, in fp32 (fla's ``FusedRMSNormGated``).

    ``forward(x, gate, fold_weight=True)`` leaves ``weight`` out, for a caller that folds it into
    the next projection (one pass over the activations fewer)."""

    def __init__(self, hidden_size: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size))

    def forward(self, x: torch.Tensor, gate: torch.Tensor, fold_weight: bool = False) -> torch.Tensor:
        x32 = x.float()
        # rsqrt(mean(x^2) + eps) from the L2 norm: one read of x instead of a squared copy
        norm = torch.linalg.vector_norm(x32, dim=-1, keepdim=True)
        rstd = torch.rsqrt(norm.square() / x.shape[-1] + self.eps)
        y = x32 * rstd if fold_weight else x32 * rstd * self.weight.float()
        return (y * torch.sigmoid(gate.float())).to(x.dtype)


class KimiDeltaAttentionTwin(nn.Module):
    """Our twin of ``fla.layers.KimiDeltaAttention``: same parameter names and shapes, same function."""

    def __init__(self, hidden_size: int = 1024, num_heads: int = 4, head_dim: int = 128, expand_v: float = 1.0,
                 conv_size: int = 4, conv_bias: bool = False, allow_neg_eigval: bool = False,
                 norm_eps: float = 1e-5, core: str = "chunk"):
        super().__init__()
        if core not in ("chunk", "naive"):
            raise ValueError(f"core must be 'chunk' or 'naive', got {core!r}")
        head_v_dim = head_dim * expand_v
        if head_v_dim != int(head_v_dim):
            raise ValueError(f"head_dim * expand_v must be an integer, got {head_dim} * {expand_v}")
        self.hidden_size, self.num_heads, self.head_dim = hidden_size, num_heads, head_dim
        self.head_v_dim = int(head_v_dim)
        self.allow_neg_eigval, self.core = allow_neg_eigval, core
        key_dim, value_dim = num_heads * head_dim, num_heads * self.head_v_dim
        self.q_proj = nn.Linear(hidden_size, key_dim, bias=False)
        self.k_proj = nn.Linear(hidden_size, key_dim, bias=False)
        self.v_proj = nn.Linear(hidden_size, value_dim, bias=False)
        self.q_conv1d = ShortConvolution(key_dim, conv_size, conv_bias)
        self.k_conv1d = ShortConvolution(key_dim, conv_size, conv_bias)
        self.v_conv1d = ShortConvolution(value_dim, conv_size, conv_bias)
        self.f_proj = nn.Sequential(nn.Linear(hidden_size, self.head_v_dim, bias=False),
                                    nn.Linear(self.head_v_dim, key_dim, bias=False))
        self.b_proj = nn.Linear(hidden_size, num_heads, bias=False)
        # fla's initialisation: decay rates A in [1, 16]; dt = softplus(dt_bias) log-uniform in [1e-3, 0.1].
        self.A_log = nn.Parameter(torch.empty(num_heads).uniform_(1, 16).log())
        dt = torch.exp(torch.rand(key_dim) * (math.log(0.1) - math.log(0.001)) + math.log(0.001)).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.g_proj = nn.Sequential(nn.Linear(hidden_size, self.head_v_dim, bias=False),
                                    nn.Linear(self.head_v_dim, value_dim, bias=True))
        self.o_norm = GatedRMSNorm(self.head_v_dim, eps=norm_eps)
        self.o_proj = nn.Linear(value_dim, hidden_size, bias=False)

    def _heads(self, x: torch.Tensor, width: int) -> torch.Tensor:
        # [B, T, H*width] -> [B, T, H, width]
        return x.unflatten(-1, (self.num_heads, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] < 1 or x.shape[-1] != self.hidden_size:
            raise ValueError(f"expected input [batch, length >= 1, {self.hidden_size}], got {tuple(x.shape)}")
        # Every step but the short convolutions and the recurrence is per token, so the layer runs
        # segment by segment, carrying the recurrent state and re-projecting the convolutions' few
        # tokens of left context: temporaries stay segment-sized (cache- and allocator-friendly).
        B, T, D = x.shape
        # All input projections in one matmul (one pass over x, a wider and faster GEMM); o_norm's
        # weight folded into o_proj, (o * w) W_o^T = o (W_o diag(w))^T.
        w_in = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight, self.f_proj[0].weight,
                          self.g_proj[0].weight, self.b_proj.weight])
        w_out = self.o_proj.weight * self.o_norm.weight.repeat(self.num_heads).to(self.o_proj.weight.dtype)
        return run_segments(lambda t0, t1, state: self._segment(x, t0, t1, state, w_in, w_out), T, SEGMENT,
                            lambda: x.new_empty(B, T, D))

    def _segment(self, x: torch.Tensor, t0: int, t1: int, state: torch.Tensor | None, w_in: torch.Tensor,
                 w_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        K, V, H = self.head_dim, self.head_v_dim, self.num_heads
        context = min(t0, self.q_conv1d.kernel_size[0] - 1)
        # [B, context + L, 3 widths + 2 low ranks + H]; only the convolutions read the context rows
        qkv, f_low, g_low, beta = F.linear(x[:, t0 - context : t1], w_in).split([2 * H * K + H * V, V, V, H], -1)
        # The three short convolutions as one, over the adjacent q, k, v columns.
        convs = (self.q_conv1d, self.k_conv1d, self.v_conv1d)
        bias = None if self.q_conv1d.bias is None else torch.cat([c.bias for c in convs])
        qkv = short_convolution(qkv, torch.cat([c.weight for c in convs]), bias)[:, context:]
        q, k, v = qkv.split([H * K, H * K, H * V], -1)
        q, k, v = self._heads(q, K), self._heads(k, K), self._heads(v, V)  # [B, L, H, K or V]
        # [B, L, H, K]: log decay, in fp32 like fla's gate kernel; dt_bias rides on the matmul
        g = F.softplus(F.linear(f_low[:, context:].float(), self.f_proj[1].weight.float(), self.dt_bias.float()))
        g = self._heads(g, K) * -self.A_log.float().exp().unsqueeze(-1)
        beta = beta[:, context:].float().sigmoid()  # [B, L, H]
        if self.allow_neg_eigval:
            beta = beta * 2
        if self.core == "chunk":
            o, state = delta_chunk.chunk_gated_delta_rule(q, k, v, g, beta, initial_state=state,
                                                          output_final_state=True, qk_l2norm=True)
        else:
            o, state = _naive_core(q, k, v, g, beta, state)
        del q, k, v, g, beta  # free before the output gate's activations exist
        gate = self._heads(self.g_proj[1](g_low[:, context:]), V)  # [B, L, H, V]
        o = self.o_norm(o, gate, fold_weight=True)
        return F.linear(o.flatten(-2), w_out), state


def _naive_core(q, k, v, g, beta, state):
    """fla's step-by-step reference, fed exactly what the chunked core sees."""
    from fla.ops.kda.naive import naive_recurrent_kda

    q, k = delta_chunk._l2norm(q.float()), delta_chunk._l2norm(k.float())
    return naive_recurrent_kda(q, k, v, g, beta, initial_state=state, output_final_state=True)


def _fla_layer_class() -> type[nn.Module]:
    from fla.layers import KimiDeltaAttention

    class FlaKimiDeltaAttention(KimiDeltaAttention):
        """fla's layer, returning only the ``[B, T, D]`` output (fla returns ``(o, None, cache)``)."""

        def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
            return super().forward(hidden_states, **kwargs)[0]

    return FlaKimiDeltaAttention


def build(kernel: str, hidden_size: int, num_heads: int, **options) -> nn.Module:
    config = {**PAPER_CONFIG, **options}
    unknown = set(config) - set(PAPER_CONFIG)
    if unknown:
        raise ValueError(f"unknown KDA options {sorted(unknown)}; known: {sorted(PAPER_CONFIG)}")
    if kernel == "fla":
        return _fla_layer_class()(hidden_size=hidden_size, num_heads=num_heads, **config)
    if kernel in ("torch", "reference"):
        return KimiDeltaAttentionTwin(hidden_size, num_heads, core="chunk" if kernel == "torch" else "naive", **config)
    raise ValueError(f"KDA kernel must be one of {KERNELS}, got {kernel!r}")


def cost(length: int, hidden_size: int, num_heads: int, batch: int, dtype_bytes: int, kernel: str,
         head_dim: int = 128, expand_v: float = 1.0, conv_size: int = 4, **_: object) -> Cost:
    B, T, D, H, W = batch, length, hidden_size, num_heads, conv_size
    K, V, C, b = head_dim, int(head_dim * expand_v), delta_chunk.CHUNK, dtype_bytes
    KD, VD = H * K, H * V
    n_in = 2 * KD + VD + 2 * V + H  # q, k, v, the two low-rank gate inputs, beta: one fused matmul
    # Per token: the input projections, the gates' second halves (f: V -> KD, g: V -> VD), o_proj,
    # and the width-W short convolutions (a multiply-add per tap).
    projections = linear_flops(B, T, D, n_in) + linear_flops(B, T, V, KD + VD) + linear_flops(B, T, VD, D)
    convolutions = 2.0 * W * B * T * (2 * KD + VD)
    # Per token and head of the chunked core (C-token chunks): decayed q/k scores (2 * 2CK),
    # the triangular solve (~C^2) and A_qk T (2C^2), T v and P v (4CV), T k and P k (4CK), and
    # the three products with the state (6KV).
    core = B * T * H * (8.0 * C * K + 3.0 * C * C + 4.0 * C * V + 6.0 * K * V)
    flops = projections + convolutions + core
    params = n_in * D + V * (KD + VD) + VD + VD * D + W * (2 * KD + VD) + H + KD + V
    weight_bytes = params * b
    # Fp32 recurrent state per head, and the convolutions' last W - 1 inputs.
    state_bytes = B * H * K * V * 4 + B * (W - 1) * (2 * KD + VD) * b
    output = B * T * D * b
    segment = B * min(T, SEGMENT)
    if kernel in ("torch", "reference"):
        # The layer runs segment by segment: the [B, T, D] output, the fused input and folded
        # output weights, and one segment's temporaries: the fused projection (n_in), the three
        # convolution outputs (dtype), and in fp32 the gate and the core's output. The core works
        # through the segment a group of tokens at a time; per group token it holds (measured, fp32,
        # D 1024, 4 heads, groups of 1,024 and 2,048 tokens) ~8 KD-wide fp32 tensors (the chunked
        # q, k, v, the decays, the stacked decayed [k; q], [U; -Q S] and the keys k^-1) and two
        # [C, C] matrices per head. Below ~1,000-token groups the layer's own peak after the core
        # (output gate and norm) is the larger, by less than 10%.
        weights = (n_in * D + D * VD) * b
        if kernel == "torch":
            per_token = n_in * b + (2 * KD + VD) * b + 4 * (KD + VD)
            core_scratch = B * min(T, delta_chunk.GROUP) * 4 * (8 * KD + 2 * H * C)
        else:
            # fla's naive loop instead: normalised q, k, its fp32 output, and per-step [H, K, V] temporaries.
            per_token = n_in * b + (2 * KD + VD) * b + 4 * (3 * KD + 2 * VD)
            core_scratch = 0
        activation = output + weights + segment * per_token + core_scratch
    else:
        activation = fla_memory.kda(B, T, D, H, b, head_dim, expand_v)
        state_bytes += B * (2 * KD + VD) * b  # fla's convolution caches keep W inputs, not W - 1
    train = {}
    if kernel == "torch":
        # Training, per token (CPU memory probe and autograd's saved-tensor hooks, fp32, 4,999 frames,
        # widths 128 / 256 / 1024, 4 heads of 128, least squares within 3%; predicts width 64 within
        # 2%): the chunked delta rule saves ~37 tensors H K wide (q, k, v, gates, decays, w, u,
        # per-chunk products) and the backward adds ~1.6 D-wide ones.
        train = fitted_train(B, T, D, b, weight_bytes, saved_per_token=37.44 * KD,
                             total_per_token=1.57 * D + 37.8 * KD)
    return Cost(flops=flops, activation_bytes=int(activation), state_bytes=state_bytes, weight_bytes=weight_bytes,
                **train)
