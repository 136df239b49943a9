"""Streaming Kimi Delta Attention (``mixers.kda``'s ``torch`` twin; Kimi Team, "Kimi Linear", 2025).

A gated delta rule per head with a forget gate per key channel, behind short convolutions:

    q_t, k_t, v_t = silu(conv4(x W_{q,k,v}))_t     causal depthwise, width W = 4: the last W - 1
                                                   projected frames are part of the state
    g_t = -exp(A_log) softplus(x_t W_f1 W_f2 + dt_bias),   beta_t = sigmoid(x_t W_b)
    q, k = l2norm(q) / sqrt(K), l2norm(k)
    S' = diag(exp g_t) S_{t-1},   S_t = S' + beta_t k_t^T (v_t - k_t S')      [K, V] per head
    o_t = q_t S_t,   y_t = (RMSNorm_V(o_t) * w * sigmoid(x_t W_g1 W_g2 + b_g)) W_o

State: S ``[B, H, K, V]`` in fp32 and the convolutions' input window ``[B, W - 1, 2HK + HV]``
in the activations' dtype (zeros before the stream starts, as the parallel form's padding).
Prefill: the projections and convolutions in one pass, then the twin's chunked core
(``mixers.delta_chunk``) for the final state.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor

from mixers import delta_chunk
from mixers.stream.base import State, Stepper, work_dtype

L2_EPS = 1e-6  # fla's l2norm eps, as the twin


@dataclasses.dataclass(frozen=True, eq=False)
class DeltaState(State):
    S: Tensor  # [B, H, K, V], fp32
    window: Tensor  # [B, W - 1, 2HK + HV]: the last W - 1 frames of the q, k, v projections


def l2norm(x: Tensor) -> Tensor:
    return x * torch.rsqrt(x.square().sum(-1, keepdim=True) + L2_EPS)


def delta_step(S: Tensor, q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    """One step of the gated delta rule: S [B, H, K, V] (not modified); q, k [B, H, K] normalised
    (q scaled); v [B, H, V]; log decay g [B, H, K]; beta [B, H]. Returns ``(o [B, H, V], S_t)``."""
    B, H, K, V = S.shape
    S = S * g.to(S.dtype).exp()[..., None]  # S' = diag(exp g) S, a new tensor
    k3 = k.reshape(B * H, 1, K).to(S.dtype)
    # u = beta (v - k S'): [B*H, 1, V]
    u = (v.reshape(B * H, 1, V).to(S.dtype) - torch.bmm(k3, S.view(B * H, K, V))) * beta.reshape(B * H, 1, 1)
    S.view(B * H, K, V).baddbmm_(k3.transpose(1, 2), u)
    o = torch.bmm(q.reshape(B * H, 1, K).to(S.dtype), S.view(B * H, K, V))
    return o.view(B, H, V), S


class KDAStepper(Stepper):
    def __init__(self, module):
        super().__init__(module)
        self.H, self.K, self.V = module.num_heads, module.head_dim, module.head_v_dim
        self.W = module.q_conv1d.kernel_size[0]
        self.width = 2 * self.H * self.K + self.H * self.V

    def _features(self, x: Tensor, window: Tensor):
        """Frames ``x [B, L, D]`` after the projected ``window [B, W-1, C]``: q, k, v [B, L, H, K|V] in
        x's dtype, g [B, L, H, K] and beta [B, L, H] in fp32, the output gate's low-rank input
        [B, L, V] and the next window."""
        m, (B, L, _), H, K, V = self.module, x.shape, self.H, self.K, self.V
        layers = [m.q_proj, m.k_proj, m.v_proj, m.f_proj[0], m.g_proj[0], m.b_proj]
        w_in = self.derived("in", [layer.weight for layer in layers], lambda: torch.cat([la.weight for la in layers]))
        qkv, f_low, g_low, beta = F.linear(x, w_in).split([self.width, V, V, H], -1)
        # The three short convolutions as one: sum_i window_i * tap_i over the last W frames, fp32.
        convs = (m.q_conv1d, m.k_conv1d, m.v_conv1d)
        taps = self.derived("taps", [c.weight for c in convs],
                            lambda: torch.cat([c.weight[:, 0, :] for c in convs]).t().float().contiguous())  # [W, C]
        frames = torch.cat((window, qkv), dim=1)  # [B, W - 1 + L, C]
        y = frames[:, : L].float() * taps[0]
        for i in range(1, self.W):
            y.addcmul_(frames[:, i : i + L].float(), taps[i])
        if m.q_conv1d.bias is not None:
            y += torch.cat([c.bias for c in convs]).float()
        q, k, v = F.silu(y).to(x.dtype).split([H * K, H * K, H * V], -1)
        g = F.softplus(F.linear(f_low.float(), m.f_proj[1].weight.float(), m.dt_bias.float()))
        g = g.view(B, L, H, K) * -m.A_log.float().exp()[:, None]
        beta = beta.float().sigmoid() * (2 if m.allow_neg_eigval else 1)
        window = frames[:, frames.shape[1] - (self.W - 1):].clone()
        return q.view(B, L, H, K), k.view(B, L, H, K), v.view(B, L, H, V), g, beta, g_low, window

    def _init(self, batch, device, dtype) -> DeltaState:
        return DeltaState(length=0, S=torch.zeros(batch, self.H, self.K, self.V, dtype=work_dtype(dtype),
                                                  device=device),
                          window=torch.zeros(batch, self.W - 1, self.width, dtype=dtype, device=device))

    def _prefill(self, x: Tensor) -> DeltaState:
        empty = self._init(x.shape[0], x.device, x.dtype)
        q, k, v, g, beta, _, window = self._features(x, empty.window)
        _, S = delta_chunk.chunk_gated_delta_rule(q, k, v, g, beta, output_final_state=True, qk_l2norm=True)
        return DeltaState(length=x.shape[1], S=S, window=window)

    def _step(self, state: DeltaState, x: Tensor) -> tuple[Tensor, DeltaState]:
        m, B, H, K, V = self.module, x.shape[0], self.H, self.K, self.V
        q, k, v, g, beta, g_low, window = self._features(x[:, None], state.window)
        work = state.S.dtype
        q, k = l2norm(q[:, 0].to(work)) * K**-0.5, l2norm(k[:, 0].to(work))
        o, S = delta_step(state.S, q, k, v[:, 0], g[:, 0], beta[:, 0])
        # Gated RMSNorm over each head's V channels in fp32 (the core's output rounded to x's dtype first)
        o = o.to(x.dtype).to(work)
        gate = m.g_proj[1](g_low[:, 0]).view(B, H, V)
        o = o * torch.rsqrt(o.square().mean(-1, keepdim=True) + m.o_norm.eps) * m.o_norm.weight.to(work)
        o = (o * torch.sigmoid(gate.to(work))).to(x.dtype)
        return m.o_proj(o.reshape(B, H * V)), DeltaState(length=state.length + 1, S=S, window=window)


def make(module) -> KDAStepper:
    return KDAStepper(module)
