"""Streaming HGRN2 (``mixers.hgrn2``'s ``torch`` twin; Qin et al., 2024, "HGRN2: Gated Linear RNNs
with State Expansion"): gated linear attention whose key is the input gate 1 - f.

    q_t = silu(x_t W_q),  g_t = logsigmoid(x_t W_f),  k_t = 1 - exp(g_t),  v_t = x_t W_i
    S_t = diag(exp g_t) S_{t-1} + k_t^T v_t,   o_t = F^-1/2 q_t S_t      (``gla.gla_step``)
    y_t = RMSNorm_D(o_t) * w  W_o

State: S ``[B, H, F, V]`` in fp32; constant size. Prefill in one product, as GLA's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mixers.stream.base import Stepper, decay_after, work_dtype
from mixers.stream.gla import GLAState, gla_step


class HGRN2Stepper(Stepper):
    def __init__(self, module):
        super().__init__(module)
        self.H, self.F, self.V = module.num_heads, module.head_f_dim, module.head_i_dim

    def _gates(self, f: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """Log forget gate (fp32) and the key 1 - exp(g) (rounded to the activations' dtype, as the twin)."""
        g = F.logsigmoid(f.float()).unflatten(-1, (self.H, self.F))
        return g, (1 - g.exp()).to(dtype)

    def _init(self, batch, device, dtype) -> GLAState:
        return GLAState(length=0, S=torch.zeros(batch, self.H, self.F, self.V, dtype=work_dtype(dtype), device=device))

    def _prefill(self, x: Tensor) -> GLAState:
        m, (B, T, _), work = self.module, x.shape, work_dtype(x.dtype)
        g, k = self._gates(m.f_proj(x), x.dtype)  # [B, T, H, F]
        v = m.i_proj(x).view(B, T, self.H, self.V).to(work)
        # [B, H, F, T] @ [B, H, T, V]
        S = (k.to(work) * decay_after(g.to(work)).exp()).permute(0, 2, 3, 1) @ v.transpose(1, 2)
        return GLAState(length=T, S=S)

    def _step(self, state: GLAState, x: Tensor) -> tuple[Tensor, GLAState]:
        m, B, D = self.module, x.shape[0], self.hidden_size
        q, f, v = self.fused_linear("in", [m.q_proj, m.f_proj, m.i_proj])(x)
        g, k = self._gates(f, x.dtype)  # [B, H, F]
        q = F.silu(q).view(B, self.H, self.F)
        o, S = gla_step(state.S, q, k, v.view(B, self.H, self.V), g, self.F**-0.5)
        # [B, H, V] -> [B, D]; the norm in fp32 (the core's output rounded to x's dtype first)
        work = work_dtype(x.dtype)
        o = F.rms_norm(o.to(x.dtype).reshape(B, D).to(work), (D,), m.g_norm.weight.to(work), m.g_norm.eps)
        return m.o_proj(o.to(x.dtype)), GLAState(length=state.length + 1, S=S)


def make(module) -> HGRN2Stepper:
    return HGRN2Stepper(module)
