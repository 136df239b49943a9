"""Gated Slot Attention (Zhang et al., 2024, "Gated Slot Attention for Efficient Linear-Time
Sequence Modeling"), as fla's ``fla.layers.GatedSlotAttention`` computes it.

Per head, with K key channels, M memory slots and V value channels:

    q, k = swish(x W_q), swish(x W_k)       v = silu(x W_v)           [B, T, H, K], [B, T, H, V]
    f = logsigmoid(x W_f) / 8               s = 1 - exp(f)            [B, T, H, M]
    K_t = K_{t-1} diag(exp f_t) + k_t s_t^T      a_t = scale * K_t^T q_t     (slot scores, [M])
    p_t = softmax(a_t)                                                  (over the M slots)
    V_t = diag(exp f_t) V_{t-1} + s_t v_t^T      o_t = V_t^T p_t
    y = RMSNorm(silu(o)) * w  W_o                 RMS over all D channels, eps 1e-5

Both recurrences are gated linear attention: the first decays its value side (the slots), the
second its key side. Without gradients the twin runs both fused chunk by chunk
(``mixers.cores.fused_gsa``: the two passes share one cumulative decay and its exponentials); for
training it runs the shared chunkwise core ``mixers.cores.chunkwise_gla`` twice, under autograd.

Kernels (one state dict serves all three):
- ``fla``: fla's layer itself, configured as the paper ran it: hidden 1024, 4 heads, and fla's
  defaults otherwise: expand_k = expand_v = 1 (K = V = 256), num_slots = K = 256, swish feature
  map, gate_logit_normalizer 8, scale 1.0, no short convolution, ``chunk`` mode (fla switches
  to ``fused_recurrent`` for T <= 64); ``layer_idx=0`` only silences fla's cache warning. Its
  forward returns the plain ``[B, T, D]`` tensor. Needs CUDA or the Triton interpreter.
- ``torch``: our twin, same parameter names and shapes. The layer runs over time segments of
  1024 carrying both states, so only one segment's projections live beside the output: linear
  time, and memory about the output's plus a constant. Any device, fp32 and bf16.
- ``reference``: the twin with fla's ``naive_recurrent_gsa`` (two per-step loops) as the core.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mixers import fla_memory
from mixers.cores.chunkwise_gla import gla_chunk
from mixers.cores.fused_gsa import CHUNK as FUSED_CHUNK
from mixers.cores.fused_gsa import fused_slot_attention
from mixers.cores.fused_gsa import scratch_bytes as fused_scratch
from mixers.cores.segments import run_segments
from mixers.cost import Cost, fitted_train, linear_flops

KERNELS = ("fla", "torch", "reference")
SEGMENT = 1024

State = tuple[torch.Tensor, torch.Tensor]
"""(slot keys [B, H, K, M], slot values [B, H, M, V]), both fp32, as fla's layer carries them."""


Maker = torch.Tensor | Callable[[], torch.Tensor]


def slot_attention(q: Maker, k: Maker, v: Maker, s: torch.Tensor, g: torch.Tensor, scale: float = 1.0,
                   initial_state: State | None = None) -> tuple[torch.Tensor, State]:
    """GSA's core: q, k [B, T, H, K]; v [B, T, H, V]; slots s and log gates g [B, T, H, M].

    q, k and v may be given as zero-argument functions that make them: with gradients, the two
    passes run one after the other and q and k are freed before v is made. Without gradients
    the passes run fused chunk by chunk (``mixers.cores.fused_gsa``). Returns ``(o [B, T, H, V], (hk, hv))``.
    """
    q, k = _make(q), _make(k)
    grad = torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, s, g, *(initial_state or ())))
    if not grad:
        v = _make(v)
        if not (torch.is_grad_enabled() and v.requires_grad):
            return fused_slot_attention(q, k, v, s, g, scale, initial_state)
    hk0, hv0 = (None, None) if initial_state is None else initial_state
    # Slot scores: keys against the slots, decayed on the slot (value) side.  [B, T, H, M]
    scores, hk = gla_chunk(q, k, s, gv=g, scale=scale, initial_state=hk0)
    del q, k
    p = scores.softmax(-1, dtype=torch.promote_types(scores.dtype, torch.float32)).to(s.dtype)
    del scores
    # Read the slots' values, decayed on the slot (key) side.  [B, T, H, V]
    o, hv = gla_chunk(p, s, _make(v), g, scale=1.0, initial_state=hv0)
    return o, (hk, hv)


def _make(x: Maker) -> torch.Tensor:
    return x() if callable(x) else x


class GSATwin(nn.Module):
    def __init__(self, hidden_size: int = 1024, num_heads: int = 4, num_slots: int | None = None,
                 gate_logit_normalizer: float = 8.0, scale: float = 1.0, norm_eps: float = 1e-5,
                 core: str = "chunk", segment: int = SEGMENT):
        super().__init__()
        if core not in ("chunk", "naive"):
            raise ValueError(f"core must be 'chunk' or 'naive', got {core!r}")
        if core == "naive":
            import fla.ops.gsa.naive  # noqa: F401  (loaded here, so no timed forward pays for the import)
        if segment < 1:
            raise ValueError(f"segment must be a positive number of frames, got {segment}")
        self.hidden_size, self.num_heads, self.core, self.segment = hidden_size, num_heads, core, segment
        self.head_dim = hidden_size // num_heads
        self.num_slots = self.head_dim if num_slots is None else num_slots
        self.gate_logit_normalizer, self.scale = gate_logit_normalizer, scale
        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.k_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.f_proj = nn.Linear(hidden_size, num_heads * self.num_slots, bias=False)
        self.g_norm = nn.RMSNorm(hidden_size, eps=norm_eps, dtype=torch.float32)
        self.o_proj = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.hidden_size or x.shape[1] < 1:
            raise ValueError(f"expected input [batch, length >= 1, {self.hidden_size}], got {tuple(x.shape)}")
        return run_segments(lambda t0, t1, state: self.step(x[:, t0:t1], state), x.shape[1], self.segment,
                            lambda: x.new_empty(x.shape))

    def step(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """One segment ``x [B, T, D]`` continuing from ``state``; returns ``(y [B, T, D], state)``."""
        B, T, D = x.shape
        H, K, M = self.num_heads, self.head_dim, self.num_slots
        # Gates first; q, k and v are made inside the core when needed, so that at most five
        # [B, T, D]-sized tensors are alive at once.  [B, T, H, M]
        f = F.logsigmoid(self.f_proj(x)).view(B, T, H, M) / self.gate_logit_normalizer
        s = 1 - f.exp()

        def q():  # [B, T, H, K]
            return F.silu(self.q_proj(x)).view(B, T, H, K)

        def k():  # [B, T, H, K]
            return F.silu(self.k_proj(x)).view(B, T, H, K)

        def v():  # [B, T, H, V]
            return F.silu(self.v_proj(x)).view(B, T, H, K)

        if self.core == "chunk":
            o, state = slot_attention(q, k, v, s, f, self.scale, state)
        else:
            from fla.ops.gsa.naive import naive_recurrent_gsa

            o, state = naive_recurrent_gsa(q(), k(), v(), s, f, scale=self.scale, initial_state=state,
                                           output_final_state=True)
        del s, f
        # [B, T, H, V] -> [B, T, D]; the norm in fp32, as fla's fused kernel does.
        work = torch.promote_types(x.dtype, torch.float32)
        o = F.silu(o.reshape(B, T, D)).to(work)
        o = F.rms_norm(o, (D,), self.g_norm.weight.to(work), self.g_norm.eps)
        return self.o_proj(o.to(x.dtype)), state


def _fla_layer(hidden_size: int, num_heads: int, **options) -> nn.Module:
    from fla.layers import GatedSlotAttention

    class FlaGSA(GatedSlotAttention):
        """fla's layer; forward returns only the ``[B, T, D]`` output."""

        def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
            return super().forward(hidden_states, **kwargs)[0]

    options.setdefault("layer_idx", 0)
    return FlaGSA(hidden_size=hidden_size, num_heads=num_heads, **options)


def build(kernel: str, hidden_size: int, num_heads: int, **options) -> nn.Module:
    if kernel == "fla":
        return _fla_layer(hidden_size, num_heads, **options)
    if kernel == "torch":
        return GSATwin(hidden_size, num_heads, core="chunk", **options)
    if kernel == "reference":
        return GSATwin(hidden_size, num_heads, core="naive", **options)
    raise ValueError(f"gsa kernel must be one of {KERNELS}, got {kernel!r}")


def cost(length: int, hidden_size: int, num_heads: int, batch: int, dtype_bytes: int, kernel: str,
         num_slots: int | None = None) -> Cost:
    B, T, D, H, e = batch, length, hidden_size, num_heads, dtype_bytes
    K = V = D // H
    M = K if num_slots is None else num_slots
    C = 64
    projections = 4 * linear_flops(B, T, D, D) + linear_flops(B, T, D, H * M)
    # swish on q, k, v (4 each), logsigmoid, /8 and 1 - exp on the gates (6), slot softmax (5),
    # silu and RMSNorm on the output (4 + 5).
    elementwise = B * T * (3 * 4 * D + 11 * H * M + 9 * D)
    if kernel == "reference":
        # naive_recurrent_gsa per step: decay, outer product and read-out of both states.
        core = 6.0 * B * H * T * (K * M + M * V)
    else:
        # Two chunked GLA passes: (K -> M) then (M -> V), each intra-chunk scores and values,
        # inter-chunk read-out and state update (fla's chunks of 64; the twin's fused core's of 32).
        c = min(FUSED_CHUNK if kernel == "torch" else C, T)
        core = B * H * (2.0 * T * c * (K + M) + 4.0 * T * K * M + 2.0 * T * c * (M + V) + 4.0 * T * M * V)
    state = B * H * (K * M + M * V) * 4
    if kernel == "fla":
        activation = fla_memory.gsa(B, T, D, H, e, M)
    else:
        activation = _twin_activation(B, T, D, H, M, e)
    weights = 4 * D * D + D * H * M + D
    train = {}
    if kernel == "torch":
        # Training, per token (CPU memory probe and autograd's saved-tensor hooks, fp32, 4,999 frames,
        # widths 128 / 256 / 1024, 4 heads; predicts width 64 within 1%): ~33.5 (saved) and ~34
        # (peak) D-wide tensors, the two passes' chunk states (~2 D^2 / (H C) per token) and two
        # [C, C] blocks per head.
        states, blocks = D * D / (H * C), H * C
        train = fitted_train(B, T, D, e, weights * e, saved_per_token=33.45 * D + 2.02 * states + 2.2 * blocks,
                             total_per_token=33.89 * D + 1.82 * states + 2.2 * blocks)
    return Cost(flops=projections + elementwise + core, activation_bytes=int(activation),
                state_bytes=state, weight_bytes=weights * e, **train)


def _twin_activation(B: int, T: int, D: int, H: int, M: int, e: int) -> int:
    """Peak of GSATwin.forward at inference, counted from its code (fp32 scratch at 4 bytes)."""
    K = V = D // H
    L = min(T, SEGMENT)
    # The fused core: f, s, q, k, v and the output beside its scratch (both states, chunk
    # temporaries, and fp32 copies of the inputs unless batch 1 in fp32).
    peak = B * L * (4 * D + 2 * H * M) * e + fused_scratch(B, H, K, M, V, L, dtype_bytes=e)
    if T > SEGMENT:
        # The whole output, and both states carried in from the previous segment.
        peak += B * T * D * e + B * H * (K * M + M * V) * 4
    return peak
