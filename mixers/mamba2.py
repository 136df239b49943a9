"""Mamba2 (Dao and Gu, 2024, "Transformers are SSMs: Generalized Models and Efficient Algorithms
Through Structured State Space Duality"), as fla's ``fla.layers.Mamba2`` computes it.

Per head h, with state size N, head width P and a scalar decay per head and step (SSD):

    z, xBC, dt = x W_in                                   [B, T, I], [B, T, I + 2N], [B, T, H]
    x, B, C    = silu(causal_depthwise_conv4(xBC))        (with bias; B and C shared by the heads)
    dt_t = softplus(dt_t + dt_bias),   a_t = -exp(A_log) dt_t
    S_t  = exp(a_t) S_{t-1} + (dt_t B_t) x_t^T,   y_t = S_t^T C_t + D x_t       S: [N, P]
    out  = RMSNorm_I(y * silu(z)) * w  W_out              (norm after the gate, eps 1e-5, fp32)

which is gated linear attention with q = C, k = dt B, v = x, one log decay a per head and scale 1,
so the twin runs the shared chunkwise core ``mixers.cores.chunkwise_gla``.

Configuration (hidden 1024 and 4 heads as for the paper's mixers; fla's defaults otherwise):
expand 2 (I = 2048), state_size 128, n_groups 1, conv_kernel 4 with bias, D per head, gated
RMSNorm, no projection biases, dt_limit (0, inf). fla ties heads to ``head_dim`` (num_heads =
I / head_dim; its default 64 would mean 32 heads), so the layer is built with head_dim = I / 4 =
512.

Kernels (one state dict serves all three):
- ``fla``: fla's layer itself, its forward returning the plain ``[B, T, D]`` tensor. On CUDA with
  ``mamba_ssm`` and ``causal_conv1d`` installed it runs their fused kernels; without them (and on
  CPU) fla falls back to its ``torch_forward``, a chunked SSD that materialises [256, 256, H, N]
  products per chunk, followed by its Triton gated norm (CUDA, or CPU under Triton's interpreter).
- ``torch``: our twin, same parameter names and shapes; ``gla_chunk`` over segments of 1024 tokens
  carrying the state and the convolution's context: linear time and memory, any device.
- ``reference``: the twin's projections around fla's ``naive_recurrent_simple_gla`` (a per-step loop).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mixers import fla_memory
from mixers.cores.chunkwise_gla import gla_chunk, scratch_bytes
from mixers.cores.segments import run_segments
from mixers.cost import Cost, fitted_train, linear_flops
from mixers.gla import SEGMENT, check_input, check_options
from mixers.kda import short_convolution

KERNELS = ("fla", "torch", "reference")
PAPER_CONFIG = dict(state_size=128, expand=2, conv_kernel=4, norm_eps=1e-5)


class Mamba2Twin(nn.Module):
    """Our twin of ``fla.layers.Mamba2`` (n_groups 1): same parameter names and shapes, same function."""

    def __init__(self, hidden_size: int = 1024, num_heads: int = 4, state_size: int = 128, expand: int = 2,
                 conv_kernel: int = 4, norm_eps: float = 1e-5, core: str = "chunk", segment: int = SEGMENT):
        super().__init__()
        if core not in ("chunk", "naive"):
            raise ValueError(f"core must be 'chunk' or 'naive', got {core!r}")
        if core == "naive":
            import fla.ops.simple_gla.naive  # noqa: F401  (loaded here, so no timed forward pays for the import)
        self.hidden_size, self.num_heads, self.core, self.segment = hidden_size, num_heads, core, segment
        self.intermediate_size = expand * hidden_size
        self.head_dim, self.ssm_state_size = self.intermediate_size // num_heads, state_size
        self.conv_dim = self.intermediate_size + 2 * state_size
        # fla's initialisation: dt = softplus(dt_bias) log-uniform in [1e-3, 0.1]; A in [1, 16]; D = 1.
        dt = torch.exp(torch.rand(num_heads) * (math.log(0.1) - math.log(0.001)) + math.log(0.001)).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.empty(num_heads).uniform_(1, 16).log())
        self.D = nn.Parameter(torch.ones(num_heads))
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, conv_kernel, groups=self.conv_dim,
                                padding=conv_kernel - 1, bias=True)
        self.in_proj = nn.Linear(hidden_size, self.intermediate_size + self.conv_dim + num_heads, bias=False)
        self.norm = RMSNormGated(self.intermediate_size, eps=norm_eps)
        self.out_proj = nn.Linear(self.intermediate_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.hidden_size)
        return run_segments(lambda t0, t1, state: self._segment(x, t0, t1, state), x.shape[1], self.segment,
                            lambda: x.new_empty(x.shape))

    def _segment(self, x: torch.Tensor, t0: int, t1: int,
                 state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        H, P, N, E = self.num_heads, self.head_dim, self.ssm_state_size, self.intermediate_size
        context = min(t0, self.conv1d.kernel_size[0] - 1)
        # [B, context + L, I | I + 2N | H] (E = I); only the convolution reads the context rows
        z, xBC, dt = self.in_proj(x[:, t0 - context : t1]).split([E, self.conv_dim, H], -1)
        xBC = short_convolution(xBC, self.conv1d.weight, self.conv1d.bias)[:, context:]
        z, dt = z[:, context:], dt[:, context:]
        B, L, _ = z.shape
        xs, Bm, Cm = xBC.split([E, N, N], -1)
        v = xs.view(B, L, H, P)  # [B, L, H, P]
        dt = F.softplus(dt.float() + self.dt_bias.float())  # [B, L, H], fp32
        y, state = ssd(v, dt, -self.A_log.float().exp(), Bm, Cm, state, naive=self.core == "naive")
        del dt
        # D skip, then the gated norm over the I channels.  [B, L, H, P] -> [B, L, I]
        y = (y + v * self.D.to(v.dtype)[:, None]).flatten(-2)
        del xBC, xs, v
        return self.out_proj(self.norm(y, z)), state


def ssd(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, Bm: torch.Tensor, Cm: torch.Tensor,
        state: torch.Tensor | None, naive: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Mamba2's selective state space recurrence (one group), without the D skip:
    ``S_t = exp(A dt_t) S_{t-1} + dt_t B_t x_t^T``, ``y_t = S_t^T C_t``, as gated linear attention.

    x: [B, L, H, P]; dt: [B, L, H] (after softplus); A: [H] (negative); Bm, Cm: [B, L, N];
    state: [B, H, N, P] or None. Returns ``(y [B, L, H, P] in x's dtype, state)``; ``naive`` runs
    fla's per-step ``naive_recurrent_simple_gla`` instead of ``gla_chunk``.
    """
    B, L, H, P = x.shape
    N = Bm.shape[-1]
    g = (A * dt).unsqueeze(-1)  # [B, L, H, 1] log decay, fp32
    q = Cm.unsqueeze(2).expand(B, L, H, N)  # [B, L, H, N]: shared by the heads
    k = Bm.unsqueeze(2) * dt.unsqueeze(-1).to(Bm.dtype)  # [B, L, H, N]: dt B
    if not naive:
        return gla_chunk(q, k, x, g, scale=1.0, initial_state=state)
    from fla.ops.simple_gla.naive import naive_recurrent_simple_gla

    y, state = naive_recurrent_simple_gla(q, k, x, g[..., 0], scale=1.0, initial_state=state,
                                          output_final_state=True)
    return y.to(x.dtype), state


class RMSNormGated(nn.Module):
    """``RMSNorm(x * silu(z)) * weight`` over the last dim, in fp32 (fla's ``RMSNormGated``, one group,
    norm after the gate)."""

    def __init__(self, size: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(size))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        work = torch.promote_types(x.dtype, torch.float32)
        y = x.to(work) * F.silu(z.to(work))
        return F.rms_norm(y, (y.shape[-1],), self.weight.to(work), self.eps).to(x.dtype)


def _fla_layer(hidden_size: int, num_heads: int, expand: int = 2, **config) -> nn.Module:
    from fla.layers import Mamba2

    class FlaMamba2(Mamba2):
        """fla's layer; forward returns only the ``[B, T, D]`` output."""

        def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
            return super().forward(hidden_states, **kwargs)[0]

    return FlaMamba2(hidden_size=hidden_size, num_heads=num_heads, head_dim=expand * hidden_size // num_heads,
                     expand=expand, **config)


def build(kernel: str, hidden_size: int, num_heads: int, **options) -> nn.Module:
    config = check_options("Mamba2", options, PAPER_CONFIG)
    if not isinstance(config["expand"], int) or config["expand"] < 1:
        raise ValueError(f"Mamba2's expand must be a positive integer, got {config['expand']!r}")
    if kernel == "fla":
        return _fla_layer(hidden_size, num_heads, **config)
    if kernel in ("torch", "reference"):
        return Mamba2Twin(hidden_size, num_heads, core="chunk" if kernel == "torch" else "naive", **config)
    raise ValueError(f"mamba2 kernel must be one of {KERNELS}, got {kernel!r}")


def cost(length: int, hidden_size: int, num_heads: int, batch: int, dtype_bytes: int, kernel: str,
         state_size: int = 128, expand: int = 2, conv_kernel: int = 4, **_: object) -> Cost:
    B, T, D, H, N, W, e = batch, length, hidden_size, num_heads, state_size, conv_kernel, dtype_bytes
    E = expand * D  # the inner width I
    P, conv_dim, C = E // H, E + 2 * N, 64
    n_in = E + conv_dim + H
    projections = linear_flops(B, T, D, n_in) + linear_flops(B, T, E, D)
    convolution = 2.0 * W * B * T * conv_dim
    gates = 6.0 * B * T * H + 2.0 * B * T * H * N + 10.0 * B * T * E  # dt, dt B; D skip, silu gate, norm
    if kernel == "reference":
        core = 6.0 * B * H * T * N * P  # per step: decay, outer product into S, C^T S
    else:
        core = B * H * (2.0 * T * min(C, T) * (N + P) + 4.0 * T * N * P + 3.0 * T * C)
    params = 3 * H + W * conv_dim + conv_dim + D * n_in + E + E * D
    activation = _twin_activation(B, T, D, H, N, P, n_in, conv_dim, e)
    conv_columns = W - 1
    if kernel == "fla":  # fla's torch_forward (no mamba_ssm): its own model; its conv cache keeps W inputs
        activation, conv_columns = fla_memory.mamba2(B, T, D, H, e, N, expand), W
    # Training, elements per token fitted to the CPU probe and autograd's saved-tensor hooks
    # (fp32, 4,999 frames, 4 heads, widths 128 / 256 / 512 at state size 128, least squares within
    # 0.2%; the constant is ~7 H N).
    train = fitted_train(B, T, D, e, params * e, saved_per_token=25.94 * D + 6.98 * H * N,
                         total_per_token=26.6 * D + 7.3 * H * N) if kernel == "torch" else {}
    return Cost(flops=projections + convolution + gates + core, activation_bytes=int(activation),
                state_bytes=B * H * N * P * 4 + B * conv_columns * conv_dim * e, weight_bytes=params * e, **train)


def _twin_activation(B: int, T: int, D: int, H: int, N: int, P: int, n_in: int, conv_dim: int, e: int) -> int:
    """Peak bytes of Mamba2Twin.forward at inference, per segment, counted from its code.

    The in_proj output stays alive throughout (z is a view of it). Core phase: the convolution
    output, the dt-scaled keys and the core output (dtype) beside gla_chunk's scratch. Output
    phase (the peak at I >> N): the skip-added output (dtype) and, in fp32, silu(z), the gated
    product and the norm's output and temporaries, about 4.5 inner-wide tensors (measured 5.3-5.7
    with the in_proj output at hidden 256 and 1024). Later segments have the whole output and the
    carried state beside them.
    """
    E = H * P

    def segment_peak(tokens: int) -> int:
        core = tokens * (n_in + conv_dim + H * N + E) * e + scratch_bytes(B, H, N, P, decay="head")
        tail = tokens * ((n_in + E) * e + 4.5 * E * 4)
        return int(max(core, tail))

    peak = segment_peak(B * min(T, SEGMENT))
    if T > SEGMENT:  # the second segment is the largest of the later ones
        peak = max(peak, segment_peak(B * min(T - SEGMENT, SEGMENT)) + B * T * D * e + B * H * N * P * 4)
    return peak
