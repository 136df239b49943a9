"""Streaming multi-scale retention (``mixers.retnet``'s ``torch`` twin, Sun et al., 2023).

Per head h, with gamma_h = 1 - 2^(-5-h) and the frame's absolute position t for the rotary
embedding (rotate-half, base 10000, as the parallel form):

    q_t, k_t = RoPE_t(x_t W_q), RoPE_t(x_t W_k);   v_t, z_t = x_t W_v, x_t W_g
    S_t = gamma_h S_{t-1} + k_t^T v_t        [K, V] per head, fp32
    o_t = K^-1/2 q_t S_t;   y_t = (RMSNorm_h(o_t) * w * silu(z_t)) W_o

State: S ``[B, H, K, V]`` in fp32 and the position (``length``); constant size.
Prefill in one product: S_T = sum_j gamma_h^(T-1-j) k_j^T v_j.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor

from mixers.retnet import log_decays, rotate
from mixers.stream.base import State, Stepper, work_dtype


@dataclasses.dataclass(frozen=True, eq=False)
class RetentionState(State):
    S: Tensor  # [B, H, K, V], fp32


def retention_step(S: Tensor, q: Tensor, k: Tensor, v: Tensor, gamma: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    """One step: S [B, H, K, V] (not modified), q, k [B, H, K], v [B, H, V], gamma [H].

    Returns ``(o [B, H, V] in S's dtype, S_t)``: S_t = gamma S + k^T v, o = scale q S_t."""
    B, H, K, V = S.shape
    S = S * gamma.view(1, H, 1, 1).to(S.dtype)  # a new tensor: the input state is left alone
    S.view(B * H, K, V).baddbmm_(k.reshape(B * H, K, 1).to(S.dtype), v.reshape(B * H, 1, V).to(S.dtype))
    o = torch.bmm(q.reshape(B * H, 1, K).to(S.dtype), S.view(B * H, K, V)).mul_(scale)
    return o.view(B, H, V), S


class RetNetStepper(Stepper):
    def __init__(self, module):
        super().__init__(module)
        self.H, self.K, self.V = module.num_heads, module.head_k_dim, module.head_v_dim

    def _init(self, batch, device, dtype) -> RetentionState:
        return RetentionState(length=0, S=torch.zeros(batch, self.H, self.K, self.V, dtype=work_dtype(dtype),
                                                       device=device))

    def _prefill(self, x: Tensor) -> RetentionState:
        m, (B, T, _), H, K, V = self.module, x.shape, self.H, self.K, self.V
        k = rotate(m.k_proj(x).view(B, T, H, K))
        v = m.v_proj(x).view(B, T, H, V)
        work = work_dtype(x.dtype)
        # [T, H]: gamma_h^(T-1-j), exact powers
        age = torch.arange(T - 1, -1, -1, dtype=torch.float32, device=x.device)  # T-1-j
        decay = (age.to(work)[:, None] * log_decays(H, x.device).to(work)).exp()
        # [B, H, K, T] @ [B, H, T, V]
        S = (k.to(work) * decay[:, :, None]).permute(0, 2, 3, 1) @ v.to(work).transpose(1, 2)
        return RetentionState(length=T, S=S)

    def _step(self, state: RetentionState, x: Tensor) -> tuple[Tensor, RetentionState]:
        m, B, H, K, V = self.module, x.shape[0], self.H, self.K, self.V
        q, k, v, z = self.fused_linear("qkvg", [m.q_proj, m.k_proj, m.v_proj, m.g_proj])(x)
        # q and k rotated together: [B, 1, 2H, K] -> two [B, H, K]
        q, k = rotate(torch.cat((q, k), -1).view(B, 1, 2 * H, K), state.length)[:, 0].split(H, dim=1)
        work = state.S.dtype  # fp32 log decays, exponentiated in the work dtype as the parallel core
        gamma = self.derived(f"gamma.{x.device}.{work}", [], lambda: log_decays(H, x.device).to(work).exp())
        o, S = retention_step(state.S, q, k, v.view(B, H, V), gamma, K**-0.5)
        o = o.to(x.dtype).float()  # the parallel core returns v's dtype
        # Gated RMSNorm over each head's V channels, fp32.  [B, H, V] -> [B, H*V]
        norm = m.g_norm_swish_gate
        o = o * torch.rsqrt(o.square().mean(-1, keepdim=True) + norm.eps) * norm.weight.float()
        o = (o * F.silu(z.view(B, H, V).float())).to(x.dtype)
        return m.o_proj(o.reshape(B, H * V)), RetentionState(length=state.length + 1, S=S)


def make(module) -> RetNetStepper:
    return RetNetStepper(module)
