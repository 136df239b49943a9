"""HGRN2 (Qin et al., 2024, "HGRN2: Gated Linear RNNs with State Expansion"), as fla's
``fla.layers.HGRN2Attention`` computes it.

HGRN's forget gate f becomes GLA's key-wise decay, and 1 - f its input gate (the key), so per head,
with F forget channels and V = D / H input channels:

    q = silu(x W_q),  g = logsigmoid(x W_f),  k = 1 - exp(g),  v = x W_i    [B, T, H, F], [B, T, H, V]
    S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T,    o_t = F^-1/2 S_t^T q_t
    y = RMSNorm_D(o) * w  W_o                    (over all D channels, eps 1e-5, fp32)

Configuration (hidden 1024 and 4 heads as for the paper's mixers; fla's defaults otherwise): fla
ties the heads to ``expand_ratio`` (num_heads = hidden / expand_ratio; its default 128 would mean 8
heads at hidden 1024), so the layer is built with ``expand_ratio=None`` and 4 heads, which makes
expand_ratio = hidden / heads = 256 (F = V = 256). No short convolution, no lower bound (a single
layer is fla's first layer), ``chunk`` mode (fla switches to ``fused_recurrent`` for T <= 64).

Kernels (one state dict serves all three):
- ``fla``: fla's layer itself, its forward returning the plain ``[B, T, D]`` tensor. Needs CUDA
  or the Triton interpreter (``bench.interpreter``).
- ``torch``: our twin, same parameter names and shapes; the chunkwise core ``mixers.cores.chunkwise_gla``
  over segments of 1024 carrying the state (``mixers.cores.segments.run_segments``). Any device, fp32 and bf16.
- ``reference``: the twin's projections around fla's ``naive_recurrent_gla`` (a per-step loop).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mixers import fla_memory
from mixers.cores.segments import run_segments
from mixers.cost import Cost, fitted_train, linear_flops
from mixers.gla import SEGMENT, check_input, check_options, gla_core, gla_twin_activation

KERNELS = ("fla", "torch", "reference")
PAPER_CONFIG = dict(norm_eps=1e-5)


class HGRN2Twin(nn.Module):
    """Our twin of ``fla.layers.HGRN2Attention``: same parameter names and shapes, same function."""

    def __init__(self, hidden_size: int = 1024, num_heads: int = 4, norm_eps: float = 1e-5, core: str = "chunk",
                 segment: int = SEGMENT):
        super().__init__()
        if core not in ("chunk", "naive"):
            raise ValueError(f"core must be 'chunk' or 'naive', got {core!r}")
        if core == "naive":
            import fla.ops.gla.naive  # noqa: F401  (loaded here, so no timed forward pays for the import)
        self.hidden_size, self.num_heads, self.core, self.segment = hidden_size, num_heads, core, segment
        self.head_f_dim = self.head_i_dim = hidden_size // num_heads
        forget_dim = num_heads * self.head_f_dim
        self.q_proj = nn.Linear(hidden_size, forget_dim, bias=False)
        self.f_proj = nn.Linear(hidden_size, forget_dim, bias=False)
        self.i_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.g_norm = nn.RMSNorm(hidden_size, eps=norm_eps, dtype=torch.float32)
        self.o_proj = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.hidden_size)
        w_in = torch.cat([self.q_proj.weight, self.f_proj.weight, self.i_proj.weight])  # one matmul over x
        return run_segments(lambda t0, t1, state: self.step(x[:, t0:t1], state, w_in), x.shape[1], self.segment,
                            lambda: x.new_empty(x.shape))

    def step(self, x: torch.Tensor, state: torch.Tensor | None,
             w_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One segment ``x [B, L, D]`` continuing from ``state [B, H, F, V]``; returns ``(y, state)``."""
        B, L, D = x.shape
        H, Fk, V = self.num_heads, self.head_f_dim, self.head_i_dim
        q, f, v = F.linear(x, w_in).split([H * Fk, H * Fk, D], -1)
        q = F.silu(q).view(B, L, H, Fk)
        g = F.logsigmoid(f.float()).view(B, L, H, Fk)  # [B, L, H, F] log forget gate, fp32
        k = (1 - g.exp()).to(v.dtype)  # input gate 1 - f
        o, state = gla_core(q, k, v.view(B, L, H, V), g, state, naive=self.core == "naive")
        del q, f, v, g, k
        # [B, L, H, V] -> [B, L, D]; the norm in fp32, as fla's fused norm-linear does.
        work = torch.promote_types(x.dtype, torch.float32)
        o = F.rms_norm(o.reshape(B, L, D).to(work), (D,), self.g_norm.weight.to(work), self.g_norm.eps)
        return self.o_proj(o.to(x.dtype)), state


def _fla_layer(hidden_size: int, num_heads: int, **config) -> nn.Module:
    from fla.layers import HGRN2Attention

    class FlaHGRN2(HGRN2Attention):
        """fla's layer; forward returns only the ``[B, T, D]`` output."""

        def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
            return super().forward(hidden_states, **kwargs)[0]

    return FlaHGRN2(hidden_size=hidden_size, num_heads=num_heads, expand_ratio=None, **config)


def build(kernel: str, hidden_size: int, num_heads: int, **options) -> nn.Module:
    config = check_options("HGRN2", options, PAPER_CONFIG)
    if kernel == "fla":
        return _fla_layer(hidden_size, num_heads, **config)
    if kernel in ("torch", "reference"):
        return HGRN2Twin(hidden_size, num_heads, core="chunk" if kernel == "torch" else "naive", **config)
    raise ValueError(f"hgrn2 kernel must be one of {KERNELS}, got {kernel!r}")


def cost(length: int, hidden_size: int, num_heads: int, batch: int, dtype_bytes: int, kernel: str,
         **_: object) -> Cost:
    B, T, D, H, e = batch, length, hidden_size, num_heads, dtype_bytes
    Fk = V = D // H
    FD, C = H * Fk, 64
    projections = linear_flops(B, T, D, 2 * FD + D) + linear_flops(B, T, D, D)
    gates = 8.0 * B * T * FD  # silu, logsigmoid, exp, 1 - f
    norm = 5.0 * B * T * D  # square, mean, rsqrt, two scalings
    if kernel == "reference":
        core = 6.0 * B * H * T * Fk * V  # per step: decay, outer product into S, q^T S
    else:
        core = B * H * (2.0 * T * min(C, T) * (Fk + V) + 4.0 * T * Fk * V + 6.0 * T * Fk)
    weights = D * (2 * FD + D) + D + D * D
    # beside the core: the silu'd queries and the keys (dtype)
    activation = gla_twin_activation(B, T, D, FD, D, H, 2 * FD + D, SEGMENT, e, extra_per_token=2 * FD * e)
    if kernel == "fla":
        activation = fla_memory.hgrn2(B, T, D, H, e)
    # Training, elements per token fitted to the CPU probe and autograd's saved-tensor hooks
    # (fp32, 4,999 frames, 4 heads, widths 128 and 256).
    train = fitted_train(B, T, D, e, weights * e, saved_per_token=21.05 * D + 125,
                         total_per_token=21.22 * D + 151) if kernel == "torch" else {}
    return Cost(flops=projections + gates + norm + core, activation_bytes=int(activation),
                state_bytes=B * H * Fk * V * 4, weight_bytes=weights * e, **train)
