"""LightNet (Qin et al., 2024, "You Only Scan Once: Efficient Multi-dimension Sequential Modeling
with LightNet"), as fla's ``fla.layers.LightNetAttention`` computes it.

Per head, with F key channels (``expand_ratio``) and V = D / H value channels:

    q = silu(x W_q),  u = x W_k,  v = x W_v                   [B, T, H, F], [B, T, H, V]
    z_t = log sum_{j<=t} exp(u_j)        per channel: the additive decay of LightNet's scan
    k_t = exp(u_t - z_t),  g_t = z_{t-1} - z_t  (g = 0 at the first step)
    S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T,   o_t = F^-1/2 S_t^T q_t
        (the same as o_t = F^-1/2 sum_{j<=t} q_t^T diag(exp(u_j) / sum_{i<=t} exp(u_i)) v_j)
    y = (RMSNorm(o) * w * silu(x W_g1 W_g2)) W_o    RMS over all D channels, eps 1e-6

The eps is 1e-6 because fla's layer calls its fused norm-gate-linear without passing
``g_norm.eps`` (1e-5), so the fused function's default applies.

Kernels (one state dict serves all three):
- ``fla``: fla's layer itself, configured as the paper ran it: hidden 1024, 4 heads, and fla's
  defaults otherwise: expand_ratio 128 (F = 128, key width 512), gate_low_rank_dim 128, no
  short convolution, ``chunk`` mode (fla switches to ``fused_recurrent`` for T <= 64). Its
  forward returns the plain ``[B, T, D]`` tensor. Needs CUDA or the Triton interpreter.
- ``torch``: our twin, same parameter names and shapes; the core is the additive form of
  ``mixers.cores.chunkwise_lightnet`` (plain chunked linear attention in a moving frame, no gates; run chunk
  by chunk in place by ``mixers.cores.inplace_lightnet`` when nothing needs a gradient), or, for
  a group of steps whose logits spread by tens of nats, the log-cumsum-exp gate in fp32 and the
  shared gated core ``mixers.cores.chunkwise_gla``. The layer runs over time segments of 1024 carrying
  (S, z) (``mixers.cores.segments``), so only one segment's projections live beside the output: linear
  time, and memory about the output's plus a constant. Any device, fp32 and bf16.
- ``reference``: the twin with fla's ``naive_recurrent_gla`` (a per-step loop) as the core.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mixers import fla_memory
from mixers.cores.chunkwise_gla import chunk_cumsum, gla_chunk
from mixers.cores.chunkwise_lightnet import GROUP, additive_group
from mixers.cores.inplace_lightnet import CHUNK as SCAN_CHUNK
from mixers.cores.inplace_lightnet import additive_group_inplace
from mixers.cores.segments import run_segments
from mixers.cost import Cost, fitted_train, linear_flops

KERNELS = ("fla", "torch", "reference")
SEGMENT = 1024
NORM_EPS = 1e-6  # what fla's fused rms_norm_swish_gate_linear uses (see the module docstring)

State = tuple[torch.Tensor, torch.Tensor]
"""(S [B, H, F, V], z [B, 1, H, F]), both fp32, as fla's layer carries them."""


def _work(dtype: torch.dtype) -> torch.dtype:
    """fp32 for fp32 and narrower inputs; fp64 inputs stay fp64 (reference checks)."""
    return torch.promote_types(dtype, torch.float32)


def additive_gate(u: torch.Tensor, z0: torch.Tensor | None = None):
    """LightNet's gate from key logits ``u [B, T, H, F]``, optionally continuing from ``z0 [B, 1, H, F]``.

    Returns ``k = exp(u - z)``, ``g = z_prev - z`` (0 at the first step of a sequence), both in
    u's dtype, and the last ``z [B, 1, H, F]`` in fp32 (fp64 for fp64 input).
    """
    uf = u.to(_work(u.dtype))
    # [B, T, H, F], fp32: z_t = log(exp(z0) + sum_{j<=t} exp(u_j))
    z = log_cumsum_exp(uf)
    if z0 is not None:
        z = torch.logaddexp(z, z0)
    # With no z0 the first step has no predecessor: z_prev = z there gives g = 0, as fla sets it.
    z_prev = torch.cat((z[:, :1] if z0 is None else z0, z[:, :-1]), dim=1)
    g = (z_prev - z).to(u.dtype)
    del z_prev
    k = (uf - z).exp_().to(u.dtype)
    return k, g, z[:, -1:].clone()


def log_cumsum_exp(x: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """``torch.logcumsumexp(x, dim=1)`` for ``x [B, T, H, F]``, about four times faster on CPU.

    Within chunks of 64 steps: m + log(cumsum(exp(x - m))) with m the chunk's maximum; the chunk
    totals are then combined by a log-cumsum-exp over the T/64 chunks. exp(x - m) cannot
    underflow while a chunk's spread (max - min) stays below 80; beyond that, torch's own op.
    """
    B, T, H, F = x.shape
    # Pad by repeating the last step: padded rows only affect the (unused) last chunk total.
    xc = torch.cat((x, x[:, -1:].expand(B, -T % chunk, H, F)), dim=1).view(B, -1, chunk, H, F)
    # [B, N, 1, H, F]; the shift cancels in value and in gradient, so it stays out of the graph.
    m = xc.amax(2, keepdim=True).detach()
    if bool((m - xc.amin(2, keepdim=True) > 80).any()):
        return torch.logcumsumexp(x, dim=1)
    local = chunk_cumsum((xc - m).exp()).log() + m  # [B, N, C, H, F]
    # Everything before each chunk: log-cumsum-exp of the chunk totals, shifted by one chunk.
    before = torch.logcumsumexp(local[:, :, -1:], dim=1)
    before = torch.cat((torch.full_like(before[:, :1], float("-inf")), before[:, :-1]), dim=1)
    return torch.logaddexp(local, before).flatten(1, 2)[:, :T]


def lightnet_attention(q: torch.Tensor, u: torch.Tensor | Callable[[], torch.Tensor], v: torch.Tensor,
                       state: State | None = None, naive: bool = False) -> tuple[torch.Tensor, State]:
    """LightNet's core: queries q and key logits u [B, T, H, F], values v [B, T, H, V].

    Scale F^-1/2. By default the additive form of ``mixers.cores.chunkwise_lightnet``, group by group (in
    place, ``mixers.cores.inplace_lightnet``, when no input or state needs a gradient); a group
    outside its safe range (logits spread by tens of nats within a chunk) takes the gated form:
    the additive gate, then ``gla_chunk``. With ``naive``: the gate, then fla's per-step
    ``naive_recurrent_gla``. ``u`` may be a zero-argument function making it.
    Returns ``(o [B, T, H, V], (S, z))``.
    """
    S, z = (None, None) if state is None else state
    u = u() if callable(u) else u
    scale = q.shape[-1] ** -0.5
    if naive:
        from fla.ops.gla.naive import naive_recurrent_gla

        k, g, z = additive_gate(u, z)
        o, S = naive_recurrent_gla(q, k, v, g, initial_state=S, output_final_state=True)
        return o, (S, z)
    B, T, H, Fk = q.shape
    work = _work(q.dtype)
    S = q.new_zeros(B, H, Fk, v.shape[-1], dtype=work) if S is None else S.to(work)
    o = v.new_empty(v.shape)
    # Nothing to differentiate: the in-place chunk recurrence; otherwise the batched form autograd can follow.
    grad = torch.is_grad_enabled() and any(x is not None and x.requires_grad for x in (q, u, v, S, z))
    group = additive_group if grad else additive_group_inplace
    for t0 in range(0, T, GROUP):
        t1 = min(t0 + GROUP, T)
        qg, ug, vg = q[:, t0:t1], u[:, t0:t1], v[:, t0:t1]
        state = group(qg, ug, vg, S, z, scale, o[:, t0:t1])
        if state is None:
            k, g, z = additive_gate(ug, z)
            o[:, t0:t1], S = gla_chunk(qg, k, vg, g, scale=scale, initial_state=S)
        else:
            S, z = state
    return o, (S, z)


class LightNetTwin(nn.Module):
    def __init__(self, hidden_size: int = 1024, num_heads: int = 4, expand_ratio: int = 128,
                 gate_low_rank_dim: int = 128, core: str = "chunk", segment: int = SEGMENT):
        super().__init__()
        if core not in ("chunk", "naive"):
            raise ValueError(f"core must be 'chunk' or 'naive', got {core!r}")
        if core == "naive":
            import fla.ops.gla.naive  # noqa: F401  (loaded here, so no timed forward pays for the import)
        if segment < 1:
            raise ValueError(f"segment must be a positive number of frames, got {segment}")
        self.hidden_size, self.num_heads, self.core, self.segment = hidden_size, num_heads, core, segment
        self.head_f_dim, self.head_v_dim = expand_ratio, hidden_size // num_heads
        key_dim = num_heads * expand_ratio
        self.q_proj = nn.Linear(hidden_size, key_dim, bias=False)
        self.k_proj = nn.Linear(hidden_size, key_dim, bias=False)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.g_proj = nn.Sequential(
            nn.Linear(hidden_size, gate_low_rank_dim, bias=False),
            nn.Linear(gate_low_rank_dim, hidden_size, bias=False),
        )
        self.g_norm = nn.RMSNorm(hidden_size, eps=NORM_EPS)
        self.o_proj = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.hidden_size or x.shape[1] < 1:
            raise ValueError(f"expected input [batch, length >= 1, {self.hidden_size}], got {tuple(x.shape)}")
        return run_segments(lambda t0, t1, state: self.step(x[:, t0:t1], state), x.shape[1], self.segment,
                            lambda: x.new_empty(x.shape))

    def step(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """One segment ``x [B, T, D]`` continuing from ``state``; returns ``(y [B, T, D], state)``."""
        B, T, D = x.shape
        H, Fk, V = self.num_heads, self.head_f_dim, self.head_v_dim
        # [B, T, H, F], [B, T, H, V]
        q = F.silu(self.q_proj(x)).view(B, T, H, Fk)
        v = self.v_proj(x).view(B, T, H, V)
        o, state = lightnet_attention(q, lambda: self.k_proj(x).view(B, T, H, Fk), v, state,
                                      naive=self.core == "naive")
        del q, v
        # [B, T, H, V] -> [B, T, D]; norm and gate in fp32, as fla's fused kernel does. Norm
        # first, so the gate projection is made when the core output is already freed.
        work = _work(x.dtype)
        o = F.rms_norm(o.reshape(B, T, D).to(work), (D,), self.g_norm.weight.to(work), NORM_EPS)
        o = (o * F.silu(self.g_proj(x).to(work))).to(x.dtype)
        return self.o_proj(o), state


def _fla_layer(hidden_size: int, num_heads: int, **options) -> nn.Module:
    from fla.layers import LightNetAttention

    class FlaLightNet(LightNetAttention):
        """fla's layer; forward returns only the ``[B, T, D]`` output."""

        def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
            return super().forward(hidden_states, **kwargs)[0]

    return FlaLightNet(hidden_size=hidden_size, num_heads=num_heads, **options)


def build(kernel: str, hidden_size: int, num_heads: int, **options) -> nn.Module:
    if kernel == "fla":
        return _fla_layer(hidden_size, num_heads, **options)
    if kernel == "torch":
        return LightNetTwin(hidden_size, num_heads, core="chunk", **options)
    if kernel == "reference":
        return LightNetTwin(hidden_size, num_heads, core="naive", **options)
    raise ValueError(f"lightnet kernel must be one of {KERNELS}, got {kernel!r}")


def cost(length: int, hidden_size: int, num_heads: int, batch: int, dtype_bytes: int, kernel: str,
         expand_ratio: int = 128, gate_low_rank_dim: int = 128) -> Cost:
    B, T, D, H, R = batch, length, hidden_size, num_heads, gate_low_rank_dim
    Fk, V = expand_ratio, D // H
    KF, e = H * Fk, dtype_bytes
    projections = (2 * linear_flops(B, T, D, KF) + 2 * linear_flops(B, T, D, D)
                   + linear_flops(B, T, D, R) + linear_flops(B, T, R, D))
    gate = 10.0 * B * T * KF  # log-cumsum-exp (max, sub, exp, add, log), shift, sub, exp
    norm_gate = 9.0 * B * T * D  # square, mean, rsqrt, two scalings; sigmoid, two products
    if kernel == "reference":
        # naive_recurrent_gla per step: decay and outer product into S, then q^T S: 3 [K, V] passes.
        core = 6.0 * B * H * T * Fk * V
    else:
        # Per chunk: q k^T and A v inside it, q^T S across chunks and the k^T v state update;
        # chunks of the in-place form (inference), which the benchmarks run.
        core = B * H * (2.0 * T * min(SCAN_CHUNK, T) * (Fk + V) + 4.0 * T * Fk * V + 6.0 * T * Fk)
    state = B * H * (Fk * V + Fk) * 4
    if kernel == "fla":
        activation = fla_memory.lightnet(B, T, D, H, e, Fk, R)
    else:
        activation = _twin_activation(B, T, D, H, Fk, R, e)
    weights = 2 * D * KF + 2 * D * D + 2 * D * R + D
    train = {}
    if kernel == "torch":
        # Training, per token (CPU memory probe and autograd's saved-tensor hooks, fp32, 4,999 frames,
        # widths 128 and 256, 4 heads): ~9 D-wide and ~7 H Fk-wide saved tensors; the backward
        # adds about one of each.
        train = fitted_train(B, T, D, e, weights * e, saved_per_token=9.27 * D + 6.8 * KF,
                             total_per_token=10.13 * D + 7.46 * KF)
    return Cost(flops=projections + gate + norm_gate + core, activation_bytes=int(activation),
                state_bytes=state, weight_bytes=weights * e, **train)


def _twin_activation(B: int, T: int, D: int, H: int, Fk: int, R: int, e: int) -> int:
    """Peak of LightNetTwin.forward at inference, counted from its code (fp32 scratch at 4 bytes)."""
    KF, V, C = H * Fk, D // H, SCAN_CHUNK
    steps = min(T, SEGMENT)
    group = min(steps, GROUP)  # steps of one group of the core
    # Layer: q, the key logits and v, and the core's output (dtype).
    layer = B * steps * (2 * KF + 2 * D) * e
    # Core (mixers.cores.inplace_lightnet), fp32: the keys exp(u - r) and the scaled queries of one group
    # (and its values, for narrower inputs), the state in the group's frame beside the carried
    # one, one chunk's scores and output.
    core = 2 * B * group * KF * 4 + 2 * B * H * Fk * V * 4 + H * C * (C + V) * 4
    core += B * group * D * 4 if e < 4 else 0
    # Tail: the normed output, the gate projection and its silu, in fp32.
    tail = B * steps * (3 * D * 4 + R * e)
    peak = max(layer + core, tail)
    if T > SEGMENT:
        # The whole output, and the state carried in from the previous segment.
        peak += B * T * D * e + B * H * Fk * V * 4
    return peak
