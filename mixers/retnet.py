"""Multi-scale retention (Sun et al., 2023, "Retentive Network: A Successor to Transformer for Large
Language Models"), as fla's ``fla.layers.MultiScaleRetention`` computes it.

Per head h, with a fixed decay gamma_h = 1 - 2^(-5-h) and K = head key width:

    q, k = RoPE(x W_q), RoPE(x W_k)          [B, T, H, K]   (rotate-half, base 10000)
    v, z = x W_v, x W_g                      [B, T, H, V]
    S_t = gamma_h S_{t-1} + k_t v_t^T,   o_t = K^-1/2 S_t^T q_t
    y = (RMSNorm_h(o) * w * silu(z)) W_o    (RMS over each head's V channels, eps 1e-5, fp32)

Retention is gated linear attention with a constant per-head log decay log(gamma_h), so the
twin calls the shared chunkwise core ``mixers.cores.chunkwise_gla`` (chunks of 64, fp32 state).

Kernels (one state dict serves all three):
- ``fla``: fla's layer itself, the configuration the paper ran: hidden 1024, 4 heads, and fla's
  defaults otherwise: expand_k 1 (K = 256), expand_v 2 (V = 512), no short convolution, swish
  output gate fused with the RMSNorm, rotary embeddings, ``chunk`` mode. Its forward returns the
  plain ``[B, T, D]`` tensor. Needs CUDA or the Triton interpreter (``bench.interpreter``).
- ``torch``: our twin, same parameter names and shapes. The layer runs over time segments of
  1024 frames (``mixers.cores.segments.run_segments``) carrying the fp32 state ``[B, H, K, V]``, the
  rotary positions offset by each segment's start, so the result is one pass's: only one
  segment's projections, core scratch and output gate live beside the output, so time is
  linear in T and memory is the output's plus a constant. Any device, fp32/bf16.
- ``reference``: the twin's projections around fla's ``naive_retention`` (materializes
  ``[B, H, T, T]``) in one pass over the whole length (it takes no initial state), so a sweep
  can time the reference op.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mixers import fla_memory
from mixers.cores.chunkwise_gla import gla_chunk, scratch_bytes
from mixers.cores.segments import run_segments
from mixers.cost import Cost, fitted_train, linear_flops

KERNELS = ("fla", "torch", "reference")
CHUNK = 64
SEGMENT = 1024
"""Frames per pass through the layer: only one segment's projections live beside the output. At
hidden 1024 on one CPU thread, segments of 256 to 1024 took the same CPU time within noise (~5%)
and 2048 or one pass 5-15% more; 1024 as GSA and GLA, a multiple of gla_chunk's blocks of 4 x 64."""
ROPE_BASE = 10000.0
EXPAND_K, EXPAND_V = 1, 2


def log_decays(num_heads: int, device: torch.device | None = None) -> torch.Tensor:
    """log(1 - 2^(-5-h)) for h = 0..H-1, in fp32: RetNet's multi-scale decays."""
    heads = torch.arange(num_heads, dtype=torch.float32, device=device)
    return torch.log1p(-torch.pow(2.0, -5.0 - heads))


def retention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, chunk_size: int = CHUNK) -> torch.Tensor:
    """Chunkwise multi-scale retention: ``q, k [B, T, H, K]``, ``v [B, T, H, V]`` -> ``[B, T, H, V]``."""
    return retention_with_state(q, k, v, None, chunk_size)[0]


def retention_with_state(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: torch.Tensor | None,
                         chunk_size: int = CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """Retention continuing from ``state [B, H, K, V]`` (fp32, or None for zeros): ``(o [B, T, H, V], state)``."""
    B, T, H, K = q.shape
    # One log decay per head, broadcast over batch and time: [B, T, H, 1]
    g = log_decays(H, q.device).view(1, 1, H, 1).expand(B, T, H, 1)
    return gla_chunk(q, k, v, g=g, scale=K**-0.5, initial_state=state, chunk_size=chunk_size)


def rotate(x: torch.Tensor, start: int = 0) -> torch.Tensor:
    """Rotary embedding on ``[B, T, H, K]`` at positions start..start+T-1, rotate-half layout (pairs i
    and i + K/2), base 10000."""
    T, K = x.shape[1], x.shape[-1]
    inv_freq = 1.0 / ROPE_BASE ** (torch.arange(0, K, 2, dtype=torch.float32, device=x.device) / K)
    # [T, K/2]; positions in fp32 as fla does, so the tables agree bit for bit.
    angles = torch.outer(torch.arange(start, start + T, dtype=torch.float32, device=x.device), inv_freq)
    cos, sin = angles.cos()[:, None], angles.sin()[:, None]  # [T, 1, K/2]
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).to(x.dtype)


class GatedRMSNorm(nn.Module):
    """RMSNorm over the last dimension, times a learned weight and silu(gate); computed in fp32."""

    def __init__(self, size: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(size))

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        y = xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + self.eps) * self.weight.float()
        return (y * F.silu(gate.float())).to(x.dtype)


class RetNetTwin(nn.Module):
    def __init__(self, hidden_size: int = 1024, num_heads: int = 4, core: str = "chunk",
                 chunk_size: int = CHUNK, norm_eps: float = 1e-5, segment: int = SEGMENT):
        super().__init__()
        if core not in ("chunk", "naive"):
            raise ValueError(f"core must be 'chunk' or 'naive', got {core!r}")
        if segment < 1:
            raise ValueError(f"segment must be a positive number of frames, got {segment}")
        if core == "naive":
            import fla.ops.retention.naive  # noqa: F401  (loaded here, so no timed forward pays for the import)
        key_dim, value_dim = hidden_size * EXPAND_K, hidden_size * EXPAND_V
        if key_dim % num_heads or (key_dim // num_heads) % 2:
            raise ValueError(f"hidden_size / num_heads must be even for rotary; got {hidden_size} / {num_heads}")
        self.hidden_size, self.num_heads, self.core, self.chunk_size = hidden_size, num_heads, core, chunk_size
        self.segment = segment
        self.head_k_dim, self.head_v_dim = key_dim // num_heads, value_dim // num_heads
        self.q_proj = nn.Linear(hidden_size, key_dim, bias=False)
        self.k_proj = nn.Linear(hidden_size, key_dim, bias=False)
        self.v_proj = nn.Linear(hidden_size, value_dim, bias=False)
        self.g_proj = nn.Linear(hidden_size, value_dim, bias=False)
        self.o_proj = nn.Linear(value_dim, hidden_size, bias=False)
        self.g_norm_swish_gate = GatedRMSNorm(self.head_v_dim, eps=norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.hidden_size or x.shape[1] < 1:
            raise ValueError(f"expected input [batch, length >= 1, {self.hidden_size}], got {tuple(x.shape)}")
        if self.core == "naive":
            return self._output(x, self._naive_retention(x))
        return run_segments(lambda t0, t1, state: self.step(x[:, t0:t1], state, t0), x.shape[1], self.segment,
                            lambda: x.new_empty(x.shape))

    def step(self, x: torch.Tensor, state: torch.Tensor | None = None,
             start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """One segment ``x [B, L, D]`` at positions ``start..start+L-1``, continuing from the fp32
        retention state ``[B, H, K, V]``; returns ``(y [B, L, D], state)``."""
        q, k, v = self._qkv(x, start)
        o, state = retention_with_state(q, k, v, state, chunk_size=self.chunk_size)
        del q, k, v
        return self._output(x, o), state

    def _qkv(self, x: torch.Tensor, start: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k ``[B, L, H, K]`` (rotary at positions start..start+L-1) and v ``[B, L, H, V]`` of ``x [B, L, D]``."""
        B, L, _ = x.shape
        H, K, V = self.num_heads, self.head_k_dim, self.head_v_dim
        q = rotate(self.q_proj(x).view(B, L, H, K), start)
        k = rotate(self.k_proj(x).view(B, L, H, K), start)
        return q, k, self.v_proj(x).view(B, L, H, V)

    def _naive_retention(self, x: torch.Tensor) -> torch.Tensor:
        """fla's ``naive_retention`` over the whole length (it takes no initial state): ``[B, T, H, V]``."""
        from fla.ops.retention.naive import naive_retention

        q, k, v = self._qkv(x)
        # [B, H, T, *] in and out; its scale is K^-1/2 as well.
        return naive_retention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)

    def _output(self, x: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        B, T, H, V = o.shape
        # [B, T, H, V] -> [B, T, H*V] -> [B, T, D]
        o = self.g_norm_swish_gate(o, self.g_proj(x).view(B, T, H, V))
        return self.o_proj(o.reshape(B, T, H * V))


def _fla_layer(hidden_size: int, num_heads: int, **options) -> nn.Module:
    from fla.layers import MultiScaleRetention

    class FlaRetNet(MultiScaleRetention):
        """fla's layer; forward returns only the ``[B, T, D]`` output."""

        def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
            return super().forward(hidden_states, **kwargs)[0]

    return FlaRetNet(hidden_size=hidden_size, num_heads=num_heads, **options)


def build(kernel: str, hidden_size: int, num_heads: int, **options) -> nn.Module:
    if kernel == "fla":
        return _fla_layer(hidden_size, num_heads, **options)
    if kernel == "torch":
        return RetNetTwin(hidden_size, num_heads, core="chunk", **options)
    if kernel == "reference":
        return RetNetTwin(hidden_size, num_heads, core="naive", **options)
    raise ValueError(f"retnet kernel must be one of {KERNELS}, got {kernel!r}")


def cost(length: int, hidden_size: int, num_heads: int, batch: int, dtype_bytes: int, kernel: str,
         segment: int = SEGMENT) -> Cost:
    B, T, D, H, e = batch, length, hidden_size, num_heads, dtype_bytes
    K, V = D * EXPAND_K // H, D * EXPAND_V // H
    projections = 2 * linear_flops(B, T, D, H * K) + 2 * linear_flops(B, T, D, H * V) + linear_flops(B, T, H * V, D)
    rotary = 6.0 * B * T * H * K  # x1 cos - x2 sin and x2 cos + x1 sin
    norm_gate = 8.0 * B * T * H * V  # square, mean, rsqrt-scale, weight; sigmoid, two products
    if kernel == "reference":
        # Scores q k^T and scores @ v over all T x T pairs, times the decay mask.
        core = B * H * (2.0 * T * T * (K + V) + 3.0 * T * T)
        # One pass: q, k, v and the output beside naive_retention's decay mask [H, T, T] and its
        # scores [B, H, T, T] (two einsum stages), fp32; then the output gate.
        activation = max(B * T * (2 * H * K + 2 * H * V) * e + (H + 2 * B * H) * T * T * 4,
                         B * T * _output_per_token(D, H, V, e))
    else:
        # Per chunk of C: q k^T and A v inside it (2TC(K+V)), q S and the state update k^T v (4TKV).
        C = min(CHUNK, T)
        core = B * H * (2.0 * T * C * (K + V) + 4.0 * T * K * V + 2.0 * T * C)
        activation = _twin_activation(B, T, D, H, K, V, e, segment)
        if kernel == "fla":  # fla's kernel keeps its per-chunk states: its own model
            activation = fla_memory.retnet(B, T, D, H, e, EXPAND_K, EXPAND_V)
    weights = 2 * D * H * K + 2 * D * H * V + H * V * D + V
    train = {}
    if kernel == "torch":
        # Training, per token (CPU memory probe and autograd's saved-tensor hooks, fp32, 4,999 frames,
        # widths 128 / 256 / 1024, 4 heads; predicts width 64 within 1%): ~19 (saved) and ~22 (peak)
        # D-wide tensors, about two [K, V] chunk states per chunk and head (D^2 / (H C) per token)
        # and two [C, C] score blocks per head (H C per token). Fitted to the one-pass layer; the
        # segmented one measures 1-2.5% below it (4,999 frames, widths 64 to 1024).
        states, blocks = D * D / (H * CHUNK), H * CHUNK
        train = fitted_train(B, T, D, dtype_bytes, weights * dtype_bytes,
                             saved_per_token=18.56 * D + 2.03 * states + 2.1 * blocks,
                             total_per_token=21.59 * D + 1.82 * states + 2.09 * blocks)
    return Cost(flops=projections + rotary + norm_gate + core, activation_bytes=int(activation),
                state_bytes=B * H * K * V * 4, weight_bytes=weights * dtype_bytes, **train)


def _output_per_token(D: int, H: int, V: int, e: int) -> int:
    """Bytes per token of the output phase: the core output and the gate projection beside the
    norm's three fp32 temporaries (the gate's silu, the normed values and their product), and an
    fp32 copy of the core output below fp32."""
    return 2 * H * V * e + (3 + (e < 4)) * H * V * 4


def _twin_activation(B: int, T: int, D: int, H: int, K: int, V: int, e: int, segment: int) -> int:
    """Peak of RetNetTwin.forward at inference, counted from its code (fp32 scratch at 4 bytes)."""
    tokens = B * min(T, segment)
    # Rotating k: q, k's projection and rotary's two fp32 halves and their concatenation (and an
    # fp32 copy of the projection below fp32).
    rotary = tokens * (2 * H * K * e + (2 + (e < 4)) * H * K * 4)
    # Core: rotated q and k, v and the core output beside gla_chunk's scratch.
    core = tokens * (2 * H * K + 2 * H * V) * e + scratch_bytes(B, H, K, V, decay="head")
    peak = max(rotary, core, tokens * _output_per_token(D, H, V, e))
    if T > segment:
        # The whole output (made before the first segment) and the state carried in.
        peak += B * T * D * e + B * H * K * V * 4
    return peak
