"""What the streaming delta-rule mixers share (KDA, DeltaNet, Gated DeltaNet): short convolutions
over a window of past projections, and one step of the (gated) delta rule.

    q_t, k_t, v_t = silu(conv_W(x W_{q,k,v}))_t      causal depthwise, width W (4): the last W - 1
                                                     projected frames are part of the state
    q, k = l2norm(q) / sqrt(K), l2norm(k)            (x / sqrt(sum x^2 + 1e-6), fla's eps)
    S' = diag(exp g_t) S_{t-1},   S_t = S' + beta_t k_t^T (v_t - k_t S'),   o_t = q_t S_t

with g per key channel (KDA), one per head (Gated DeltaNet) or none (DeltaNet). State: S
``[B, H, K, V]`` in fp32 and the window ``[B, W - 1, 2HK + HV]`` in the activations' dtype (zeros
before the stream starts, as the parallel forms' padding). Prefill: projections and convolutions in
one pass, then the twins' chunked core (``mixers.cores.chunkwise_delta``) for the final state.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod

import torch
from torch import Tensor, nn

from mixers.cores import chunkwise_delta as delta_chunk
from mixers.stream.base import State, Stepper, work_dtype
from mixers.stream.short_conv import causal_conv, conv_taps

L2_EPS = 1e-6  # fla's l2norm eps, as the twins


@dataclasses.dataclass(frozen=True, eq=False)
class DeltaState(State):
    S: Tensor  # [B, H, K, V], fp32
    window: Tensor  # [B, W - 1, 2HK + HV]: the last W - 1 frames of the q, k, v projections


def l2norm(x: Tensor) -> Tensor:
    return x * torch.rsqrt(x.square().sum(-1, keepdim=True) + L2_EPS)


def delta_step(S: Tensor, q: Tensor, k: Tensor, v: Tensor, g: Tensor | None, beta: Tensor) -> tuple[Tensor, Tensor]:
    """One step of the gated delta rule: S [B, H, K, V] (not modified); q, k [B, H, K] normalised
    (q scaled); v [B, H, V]; log decay g [B, H, K] or None; beta [B, H]. Returns ``(o [B, H, V], S_t)``."""
    B, H, K, V = S.shape
    S = S.clone() if g is None else S * g.to(S.dtype).exp()[..., None]  # S' = diag(exp g) S, a new tensor
    k3 = k.reshape(B * H, 1, K).to(S.dtype)
    # u = beta (v - k S'): [B*H, 1, V]
    u = (v.reshape(B * H, 1, V).to(S.dtype) - torch.bmm(k3, S.view(B * H, K, V))) * beta.reshape(B * H, 1, 1)
    S.view(B * H, K, V).baddbmm_(k3.transpose(1, 2), u)
    o = torch.bmm(q.reshape(B * H, 1, K).to(S.dtype), S.view(B * H, K, V))
    return o.view(B, H, V), S


class DeltaRuleStepper(Stepper):
    """Subclasses name the projections beside q, k, v (``_extra_layers``), make the gates from
    their outputs (``_gates``) and turn the core output into o_proj's input (``_output``)."""

    def __init__(self, module):
        super().__init__(module)
        self.H, self.V = module.num_heads, module.head_v_dim
        self.K = module.head_k_dim if hasattr(module, "head_k_dim") else module.head_dim
        self.W = module.q_conv1d.kernel_size[0]
        self.width = 2 * self.H * self.K + self.H * self.V

    @abstractmethod
    def _extra_layers(self) -> list[nn.Linear]: ...

    @abstractmethod
    def _gates(self, extras: list[Tensor]) -> tuple[Tensor | None, Tensor]:
        """``(g [B, L, H, K] fp32 or None, beta [B, L, H] fp32)`` from the extra projections [B, L, *]."""

    @abstractmethod
    def _output(self, o: Tensor, extras: list[Tensor]) -> Tensor:
        """o [B, H, V] (activations' dtype) and one frame's extras [B, *] -> o_proj's input [B, H*V]."""

    def _features(self, x: Tensor, window: Tensor):
        """Frames ``x [B, L, D]`` after the projected ``window [B, W-1, C]``: q, k, v [B, L, H, K|V] in
        x's dtype, the extra projections [B, L, *] and the next window."""
        m, (B, L, _), H, K, V = self.module, x.shape, self.H, self.K, self.V
        extra = self._extra_layers()
        sizes = [self.width] + [layer.weight.shape[0] for layer in extra]
        qkv, *extras = self.fused_linear("in", [m.q_proj, m.k_proj, m.v_proj] + extra, sizes)(x)
        # The three short convolutions as one, over the adjacent q, k, v columns.
        convs = (m.q_conv1d, m.k_conv1d, m.v_conv1d)
        taps = self.derived("taps", [c.weight for c in convs], lambda: conv_taps([c.weight for c in convs]))
        bias = None if m.q_conv1d.bias is None else torch.cat([c.bias for c in convs])
        qkv, window = causal_conv(window, qkv, taps, bias)
        q, k, v = qkv.split([H * K, H * K, H * V], -1)
        return q.view(B, L, H, K), k.view(B, L, H, K), v.view(B, L, H, V), extras, window

    def _init(self, batch, device, dtype) -> DeltaState:
        return DeltaState(length=0, S=torch.zeros(batch, self.H, self.K, self.V, dtype=work_dtype(dtype),
                                                  device=device),
                          window=torch.zeros(batch, self.W - 1, self.width, dtype=dtype, device=device))

    def _prefill(self, x: Tensor) -> DeltaState:
        empty = self._init(x.shape[0], x.device, x.dtype)
        q, k, v, extras, window = self._features(x, empty.window)
        g, beta = self._gates(extras)
        g = torch.zeros(q.shape, dtype=work_dtype(x.dtype), device=x.device) if g is None else g
        _, S = delta_chunk.chunk_gated_delta_rule(q, k, v, g, beta, output_final_state=True, qk_l2norm=True)
        return DeltaState(length=x.shape[1], S=S, window=window)

    def _step(self, state: DeltaState, x: Tensor) -> tuple[Tensor, DeltaState]:
        q, k, v, extras, window = self._features(x[:, None], state.window)
        g, beta = self._gates(extras)
        work = state.S.dtype
        q, k = l2norm(q[:, 0].to(work)) * self.K**-0.5, l2norm(k[:, 0].to(work))
        o, S = delta_step(state.S, q, k, v[:, 0], None if g is None else g[:, 0], beta[:, 0])
        o = self._output(o.to(x.dtype), [e[:, 0] for e in extras])  # the core returns v's dtype
        return self.module.o_proj(o), DeltaState(length=state.length + 1, S=S, window=window)
