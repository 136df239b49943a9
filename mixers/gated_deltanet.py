"""Gated DeltaNet (Yang, Kautz and Hatamizadeh, 2025, "Gated Delta Networks: Improving Mamba2 with
Delta Rule"), as fla's ``fla.layers.GatedDeltaNet`` computes it.

Per head, with ``q, k`` L2-normalised over the key width ``K``, state ``S: [K, V]`` and one decay
per head and step (Mamba2's gate on DeltaNet's rule):

    S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T,     o_t = K^-1/2 S_t^T q_t
    g_t = -exp(A_log) * softplus(x_t W_a + dt_bias)                        (per head)

around it, as in fla's layer:

    q, k, v = silu(causal_depthwise_conv4(x W_{q,k,v}))       (short convolutions, no bias)
    beta    = sigmoid(x W_b)                                   (per head)
    y       = (RMSNorm_V(o) * w * silu(x W_g)) W_o             (per head, eps 1e-5, fp32)

(``exp(g) (I - b k k^T) S`` equals ``(I - b k k^T) exp(g) S``: the decay is a scalar.)

Configuration (hidden 1024 and 4 heads as for the paper's mixers; fla's defaults otherwise):
head_dim 256 (K = 256, key width 1024), expand_v 2 (V = 512, value width 2048), short
convolutions of width 4 without bias, output gate on (swish), allow_neg_eigval False,
``chunk`` mode (fla switches to ``fused_recurrent`` in eval mode under no_grad for T <= 64).

Kernels (one state dict serves all three):
- ``fla``: fla's layer itself, its forward returning the plain ``[B, T, D]`` tensor. Needs CUDA
  or the Triton interpreter (``bench.interpreter``).
- ``torch``: our twin: the chunked gated delta rule of ``mixers.cores.chunkwise_delta`` with the head's
  decay on every key channel, over segments of 2048 tokens (``mixers.deltanet.DeltaRuleTwin``).
- ``reference``: the twin's projections around fla's ``naive_recurrent_gated_delta_rule``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mixers import fla_memory
from mixers.cost import Cost
from mixers.deltanet import SEGMENT, DeltaRuleTwin, _check_core, delta_cost, fla_delta_cost
from mixers.gla import check_options
from mixers.kda import ShortConvolution
from mixers.retnet import GatedRMSNorm

KERNELS = ("fla", "torch", "reference")
PAPER_CONFIG = dict(head_dim=256, expand_v=2.0, conv_size=4, conv_bias=False, allow_neg_eigval=False, norm_eps=1e-5)


class GatedDeltaNetTwin(DeltaRuleTwin):
    """Our twin of ``fla.layers.GatedDeltaNet``: same parameter names and shapes, same function."""

    def __init__(self, hidden_size: int = 1024, num_heads: int = 4, head_dim: int = 256, expand_v: float = 2.0,
                 conv_size: int = 4, conv_bias: bool = False, allow_neg_eigval: bool = False,
                 norm_eps: float = 1e-5, core: str = "chunk", segment: int = SEGMENT):
        super().__init__()
        _check_core(core, segment)
        head_v_dim = head_dim * expand_v
        if head_v_dim != int(head_v_dim):
            raise ValueError(f"head_dim * expand_v must be an integer, got {head_dim} * {expand_v}")
        self.hidden_size, self.num_heads, self.core, self.segment = hidden_size, num_heads, core, segment
        self.head_k_dim, self.head_v_dim = head_dim, int(head_v_dim)
        self.allow_neg_eigval = allow_neg_eigval
        key_dim, value_dim = num_heads * head_dim, num_heads * self.head_v_dim
        # fla's initialisation: decay rates A in [0, 16]; dt = softplus(dt_bias) log-uniform in [1e-3, 0.1].
        self.A_log = nn.Parameter(torch.empty(num_heads).uniform_(0, 16).log())
        dt = torch.exp(torch.rand(num_heads) * (math.log(0.1) - math.log(0.001)) + math.log(0.001)).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.q_proj = nn.Linear(hidden_size, key_dim, bias=False)
        self.k_proj = nn.Linear(hidden_size, key_dim, bias=False)
        self.v_proj = nn.Linear(hidden_size, value_dim, bias=False)
        self.a_proj = nn.Linear(hidden_size, num_heads, bias=False)
        self.b_proj = nn.Linear(hidden_size, num_heads, bias=False)
        self.q_conv1d = ShortConvolution(key_dim, conv_size, conv_bias)
        self.k_conv1d = ShortConvolution(key_dim, conv_size, conv_bias)
        self.v_conv1d = ShortConvolution(value_dim, conv_size, conv_bias)
        self.g_proj = nn.Linear(hidden_size, value_dim, bias=False)
        self.o_norm = GatedRMSNorm(self.head_v_dim, eps=norm_eps)
        self.o_proj = nn.Linear(value_dim, hidden_size, bias=False)

    def _input_weights(self) -> list[torch.Tensor]:
        # q, k, v, beta, then the extra columns: the decay's input (H) and the output gate (H * V)
        return super()._input_weights() + [self.a_proj.weight, self.g_proj.weight]

    def _log_decay(self, extra: torch.Tensor) -> torch.Tensor:
        # [B, L, H], fp32 as fla's gate kernel
        a = extra[..., : self.num_heads].float()
        return -self.A_log.float().exp() * F.softplus(a + self.dt_bias.float())

    def _output(self, o: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        gate = extra[..., self.num_heads :].unflatten(-1, (self.num_heads, self.head_v_dim))  # [B, L, H, V]
        return self.o_norm(o, gate)


def _fla_layer(hidden_size: int, num_heads: int, **config) -> nn.Module:
    from fla.layers import GatedDeltaNet

    class FlaGatedDeltaNet(GatedDeltaNet):
        """fla's layer; forward returns only the ``[B, T, D]`` output."""

        def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
            return super().forward(hidden_states, **kwargs)[0]

    return FlaGatedDeltaNet(hidden_size=hidden_size, num_heads=num_heads, **config)


def build(kernel: str, hidden_size: int, num_heads: int, **options) -> nn.Module:
    config = check_options("Gated DeltaNet", options, PAPER_CONFIG)
    if kernel == "fla":
        return _fla_layer(hidden_size, num_heads, **config)
    if kernel in ("torch", "reference"):
        return GatedDeltaNetTwin(hidden_size, num_heads, core="chunk" if kernel == "torch" else "naive", **config)
    raise ValueError(f"gated_deltanet kernel must be one of {KERNELS}, got {kernel!r}")


def cost(length: int, hidden_size: int, num_heads: int, batch: int, dtype_bytes: int, kernel: str,
         head_dim: int = 256, expand_v: float = 2.0, conv_size: int = 4, **_: object) -> Cost:
    D, H, K, W = hidden_size, num_heads, head_dim, conv_size
    V = int(head_dim * expand_v)
    KD, VD = H * K, H * V
    n_in = 2 * KD + VD + H + H + VD  # q, k, v, beta, the decay's input, the output gate: one matmul
    params = 2 * H + n_in * D + W * (2 * KD + VD) + V + VD * D
    # No training estimate yet (train_bytes None). Measured with the CPU probe (fp32, 4,999 frames,
    # 4 heads, head_dim 256, expand_v 2): 1.44 GB at width 128 and 1.45 GB at 256, about
    # 2.0 D + 73.3 KD elements per token (the chunked core's key-wide tensors, not growing with
    # the width): more than naive SA's 1.2 GB at that length, which tests/mixers/test_train_mode.py
    # assumes no twin reaches; left for the lead to decide.
    train = None
    cost = delta_cost(batch, length, D, H, K, V, W, n_in, 0, params, dtype_bytes, kernel, train)
    if kernel != "fla":
        return cost
    return fla_delta_cost(cost, fla_memory.gated_deltanet(batch, length, D, H, dtype_bytes, K, expand_v),
                          batch * (2 * KD + VD) * dtype_bytes)
