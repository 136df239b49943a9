"""Streaming Gated Linear Attention (``mixers.gla``'s ``torch`` twin; Yang et al., 2024).

Per head, a data-dependent decay on every key channel:

    q_t, k_t, v_t, z_t = x_t W_q, x_t W_k, x_t W_v, x_t W_g
    g_t = logsigmoid(x_t W_g1 W_g2 + b) / 16                    [K] per head, fp32
    S_t = diag(exp g_t) S_{t-1} + k_t^T v_t,   o_t = K^-1/2 q_t S_t      [K, V], fp32
    y_t = (RMSNorm_V(o_t) * w * silu(z_t)) W_o

State: S ``[B, H, K, V]`` in fp32; constant size. Prefill in one product:
S_T = sum_j (k_j exp(sum_{j<t<=T} g_t))^T v_j (a reverse cumulative sum, every exponent <= 0).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor

from mixers.stream.base import State, Stepper, decay_after, work_dtype


@dataclasses.dataclass(frozen=True, eq=False)
class GLAState(State):
    S: Tensor  # [B, H, K, V], fp32


def gla_step(S: Tensor, q: Tensor, k: Tensor, v: Tensor, g: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    """One step: S [B, H, K, V] (not modified); q, k and log decay g [B, H, K]; v [B, H, V].

    Returns ``(o [B, H, V] in S's dtype, S_t)``: S_t = diag(exp g) S + k^T v, o = scale q S_t."""
    B, H, K, V = S.shape
    S = S * g.to(S.dtype).exp()[..., None]
    S.view(B * H, K, V).baddbmm_(k.reshape(B * H, K, 1).to(S.dtype), v.reshape(B * H, 1, V).to(S.dtype))
    o = torch.bmm(q.reshape(B * H, 1, K).to(S.dtype), S.view(B * H, K, V)).mul_(scale)
    return o.view(B, H, V), S


class GLAStepper(Stepper):
    def __init__(self, module):
        super().__init__(module)
        self.H, self.K, self.V = module.num_heads, module.head_k_dim, module.head_v_dim

    def _gate(self, low: Tensor) -> Tensor:
        m = self.module
        return (F.logsigmoid(m.gk_proj[1](low).float()) / m.gate_logit_normalizer).unflatten(-1, (self.H, self.K))

    def _init(self, batch, device, dtype) -> GLAState:
        return GLAState(length=0, S=torch.zeros(batch, self.H, self.K, self.V, dtype=work_dtype(dtype), device=device))

    def _prefill(self, x: Tensor) -> GLAState:
        m, (B, T, _), work = self.module, x.shape, work_dtype(x.dtype)
        k = m.k_proj(x).view(B, T, self.H, self.K).to(work)
        v = m.v_proj(x).view(B, T, self.H, self.V).to(work)
        g = self._gate(m.gk_proj[0](x)).to(work)  # [B, T, H, K]
        # [B, H, K, T] @ [B, H, T, V]
        S = (k * decay_after(g).exp()).permute(0, 2, 3, 1) @ v.transpose(1, 2)
        return GLAState(length=T, S=S)

    def _step(self, state: GLAState, x: Tensor) -> tuple[Tensor, GLAState]:
        m, B, H, K, V = self.module, x.shape[0], self.H, self.K, self.V
        q, k, v, z, low = self.fused_linear("in", [m.q_proj, m.k_proj, m.v_proj, m.g_proj, m.gk_proj[0]])(x)
        o, S = gla_step(state.S, q.view(B, H, K), k.view(B, H, K), v.view(B, H, V), self._gate(low), K**-0.5)
        o = o.to(x.dtype).float()  # the parallel core returns v's dtype
        # Gated RMSNorm over each head's V channels, fp32.  [B, H, V] -> [B, H*V]
        norm = m.g_norm_swish_gate
        o = o * torch.rsqrt(o.square().mean(-1, keepdim=True) + norm.eps) * norm.weight.float()
        o = (o * F.silu(z.view(B, H, V).float())).to(x.dtype)
        return m.o_proj(o.reshape(B, H * V)), GLAState(length=state.length + 1, S=S)


def make(module) -> GLAStepper:
    return GLAStepper(module)
