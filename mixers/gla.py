"""Gated Linear Attention (Yang et al., 2024, "Gated Linear Attention Transformers with
Hardware-Efficient Training"), as fla's ``fla.layers.GatedLinearAttention`` computes it.

Per head, with K key and V value channels and a data-dependent decay on every key channel:

    q, k, v, z = x W_q, x W_k, x W_v, x W_g                  [B, T, H, K], [B, T, H, V]
    g_t = logsigmoid(x_t W_g1 W_g2 + b) / 16                  [B, T, H, K]  (low rank 16)
    S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T,   o_t = K^-1/2 S_t^T q_t
    y = (RMSNorm_V(o) * w * silu(z)) W_o                      (per head, eps 1e-5, fp32)

Configuration (hidden 1024 and 4 heads as for the paper's mixers; fla's defaults otherwise):
expand_k 0.5 (K = 128), expand_v 1 (V = 256), gate_low_rank_dim 16, gate_logit_normalizer 16,
no short convolution, no feature map, swish output gate fused with the RMSNorm, ``chunk``
mode (fla switches to ``fused_recurrent`` for T <= 64).

Kernels (one state dict serves all three):
- ``fla``: fla's layer itself, its forward returning the plain ``[B, T, D]`` tensor. Needs CUDA
  or the Triton interpreter (``bench.interpreter``).
- ``torch``: our twin, same parameter names and shapes; the chunkwise core ``mixers.cores.chunkwise_gla``
  run over time segments of 1024 carrying the state: linear time and memory, any device.
- ``reference``: the twin's projections around fla's ``naive_recurrent_gla`` (a per-step loop).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mixers import fla_memory
from mixers.cores.chunkwise_gla import gla_chunk, scratch_bytes
from mixers.cores.segments import run_segments
from mixers.cost import Cost, fitted_train, linear_flops
from mixers.retnet import GatedRMSNorm

KERNELS = ("fla", "torch", "reference")
SEGMENT = 1024
"""Tokens per pass through the layer: only one segment's projections live beside the output."""
PAPER_CONFIG = dict(expand_k=0.5, expand_v=1.0, gate_low_rank_dim=16, gate_logit_normalizer=16, norm_eps=1e-5)


def gla_core(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, state: torch.Tensor | None,
             naive: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Key-decay GLA, scale K^-1/2: ``gla_chunk`` or fla's per-step ``naive_recurrent_gla``."""
    if naive:
        from fla.ops.gla.naive import naive_recurrent_gla

        return naive_recurrent_gla(q, k, v, g, initial_state=state, output_final_state=True)
    return gla_chunk(q, k, v, g, scale=q.shape[-1] ** -0.5, initial_state=state)


def check_input(x: torch.Tensor, hidden_size: int) -> None:
    if x.dim() != 3 or x.shape[-1] != hidden_size or x.shape[1] < 1:
        raise ValueError(f"expected input [batch, length >= 1, {hidden_size}], got {tuple(x.shape)}")


def check_options(mixer: str, options: dict, known: dict) -> dict:
    unknown = set(options) - set(known)
    if unknown:
        raise ValueError(f"unknown {mixer} options {sorted(unknown)}; known: {sorted(known)}")
    return {**known, **options}


class GLATwin(nn.Module):
    """Our twin of ``fla.layers.GatedLinearAttention``: same parameter names and shapes, same function."""

    def __init__(self, hidden_size: int = 1024, num_heads: int = 4, expand_k: float = 0.5, expand_v: float = 1.0,
                 gate_low_rank_dim: int = 16, gate_logit_normalizer: float = 16, norm_eps: float = 1e-5,
                 core: str = "chunk", segment: int = SEGMENT):
        super().__init__()
        if core not in ("chunk", "naive"):
            raise ValueError(f"core must be 'chunk' or 'naive', got {core!r}")
        key_dim, value_dim = round(hidden_size * expand_k), round(hidden_size * expand_v)
        if key_dim % num_heads or value_dim % num_heads:
            raise ValueError(f"key and value widths ({key_dim}, {value_dim}) must be multiples of {num_heads} heads")
        if core == "naive":
            import fla.ops.gla.naive  # noqa: F401  (loaded here, so no timed forward pays for the import)
        self.hidden_size, self.num_heads, self.core, self.segment = hidden_size, num_heads, core, segment
        self.head_k_dim, self.head_v_dim = key_dim // num_heads, value_dim // num_heads
        self.gate_logit_normalizer = gate_logit_normalizer
        self.q_proj = nn.Linear(hidden_size, key_dim, bias=False)
        self.k_proj = nn.Linear(hidden_size, key_dim, bias=False)
        self.v_proj = nn.Linear(hidden_size, value_dim, bias=False)
        self.g_proj = nn.Linear(hidden_size, value_dim, bias=False)
        self.gk_proj = nn.Sequential(nn.Linear(hidden_size, gate_low_rank_dim, bias=False),
                                     nn.Linear(gate_low_rank_dim, key_dim, bias=True))
        self.o_proj = nn.Linear(value_dim, hidden_size, bias=False)
        self.g_norm_swish_gate = GatedRMSNorm(self.head_v_dim, eps=norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.hidden_size)
        # q, k, v and the gate's low-rank input in one matmul (one pass over x).
        w_in = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight, self.gk_proj[0].weight])
        return run_segments(lambda t0, t1, state: self.step(x[:, t0:t1], state, w_in), x.shape[1], self.segment,
                            lambda: x.new_empty(x.shape))

    def step(self, x: torch.Tensor, state: torch.Tensor | None,
             w_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One segment ``x [B, L, D]`` continuing from ``state [B, H, K, V]``; returns ``(y, state)``."""
        B, L, _ = x.shape
        H, K, V = self.num_heads, self.head_k_dim, self.head_v_dim
        q, k, v, low = F.linear(x, w_in).split([H * K, H * K, H * V, w_in.shape[0] - 2 * H * K - H * V], -1)
        # [B, L, H, K] log decay, fp32 as fla's gate
        g = F.logsigmoid(self.gk_proj[1](low).float()).view(B, L, H, K) / self.gate_logit_normalizer
        del low  # a view of the fused projection: keeping it would keep all of it through the output gate
        o, state = gla_core(q.view(B, L, H, K), k.view(B, L, H, K), v.view(B, L, H, V), g, state,
                            naive=self.core == "naive")
        del q, k, v, g
        # [B, L, H, V] -> [B, L, D]
        o = self.g_norm_swish_gate(o.to(x.dtype), self.g_proj(x).view(B, L, H, V))
        return self.o_proj(o.reshape(B, L, H * V)), state


def _fla_layer(hidden_size: int, num_heads: int, **config) -> nn.Module:
    from fla.layers import GatedLinearAttention

    class FlaGLA(GatedLinearAttention):
        """fla's layer; forward returns only the ``[B, T, D]`` output."""

        def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
            return super().forward(hidden_states, **kwargs)[0]

    return FlaGLA(hidden_size=hidden_size, num_heads=num_heads, **config)


def build(kernel: str, hidden_size: int, num_heads: int, **options) -> nn.Module:
    config = check_options("GLA", options, PAPER_CONFIG)
    if kernel == "fla":
        return _fla_layer(hidden_size, num_heads, **config)
    if kernel in ("torch", "reference"):
        return GLATwin(hidden_size, num_heads, core="chunk" if kernel == "torch" else "naive", **config)
    raise ValueError(f"gla kernel must be one of {KERNELS}, got {kernel!r}")


def cost(length: int, hidden_size: int, num_heads: int, batch: int, dtype_bytes: int, kernel: str,
         expand_k: float = 0.5, expand_v: float = 1.0, gate_low_rank_dim: int = 16, **_: object) -> Cost:
    B, T, D, H, R, e = batch, length, hidden_size, num_heads, gate_low_rank_dim, dtype_bytes
    KD, VD = round(D * expand_k), round(D * expand_v)
    K, V, C = KD // H, VD // H, 64
    projections = linear_flops(B, T, D, 2 * KD + 2 * VD + R) + linear_flops(B, T, R, KD) + linear_flops(B, T, VD, D)
    gate = 4.0 * B * T * KD  # logsigmoid, scale
    norm_gate = 9.0 * B * T * VD  # square, mean, rsqrt, two scalings; sigmoid, two products
    if kernel == "reference":
        core = 6.0 * B * H * T * K * V  # per step: decay, outer product into S, q^T S
    else:
        # Per chunk of C: decayed q k^T and A v inside it, q^T S and the k^T v state update.
        core = B * H * (2.0 * T * min(C, T) * (K + V) + 4.0 * T * K * V + 6.0 * T * K)
    weights = D * (2 * KD + 2 * VD + R) + R * KD + KD + VD * D + V
    activation = gla_twin_activation(B, T, D, KD, VD, H, 2 * KD + VD + R, SEGMENT, e)
    if kernel == "fla":
        activation = fla_memory.gla(B, T, D, H, e, expand_k, expand_v, R)
    # Training, elements per token fitted to the CPU probe and autograd's saved-tensor hooks
    # (fp32, 4,999 frames, 4 heads, widths 128 / 256 / 512 at fla's default expansions, least squares within 2%).
    train = fitted_train(B, T, D, e, weights * e, saved_per_token=17.45 * D + 72,
                         total_per_token=17.62 * D + 154) if kernel == "torch" else {}
    return Cost(flops=projections + gate + norm_gate + core, activation_bytes=int(activation),
                state_bytes=B * H * K * V * 4, weight_bytes=weights * e, **train)


def gla_twin_activation(B: int, T: int, D: int, KD: int, VD: int, H: int, n_in: int, segment: int, e: int,
                        decay: str = "key", extra_per_token: int = 0) -> int:
    """Peak bytes of a GLA-family twin at inference (counted from the code, fp32 scratch at 4 bytes).

    Weights made per call (the fused input weight), one segment's fused projection, its fp32 gate
    and gla_chunk's scratch beside the core output; after the core, the output gate and the norm's
    temporaries. Later segments have the whole output and the carried state beside them.
    ``extra_per_token``: bytes per token a twin keeps beside the core besides those (e.g. its keys
    made from the gate).
    """
    K, V = KD // H, VD // H

    def segment_peak(tokens: int) -> int:
        core = tokens * (n_in * e + 4 * KD + VD * e + extra_per_token) + scratch_bytes(B, H, K, V, decay=decay)
        # the core output, the output gate projection, and the norm's three fp32 temporaries
        tail = tokens * (2 * VD * e + 3 * VD * 4)
        return n_in * D * e + max(core, tail)

    peak = segment_peak(B * min(T, segment))
    if T > segment:  # the second segment is the largest of the later ones
        peak = max(peak, segment_peak(B * min(T - segment, segment)) + B * T * D * e + B * H * K * V * 4)
    return peak
