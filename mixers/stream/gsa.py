"""Streaming Gated Slot Attention (``mixers.gsa``'s ``torch`` twin; Zhang et al., 2024).

Two gated slot memories per head (K key channels, M slots, V value channels):

    q_t, k_t, v_t = silu(x_t W_q), silu(x_t W_k), silu(x_t W_v)
    f_t = logsigmoid(x_t W_f) / 8,   s_t = 1 - exp(f_t)                      [M] per head
    K~_t = K~_{t-1} diag(exp f_t) + k_t^T s_t        [K, M]:  a_t = scale q_t K~_t
    p_t  = softmax(a_t)                                           (over the M slots)
    V~_t = diag(exp f_t) V~_{t-1} + s_t^T v_t        [M, V]:  o_t = p_t V~_t
    y_t  = RMSNorm(silu(o_t)) * w  W_o

State: K~ ``[B, H, K, M]`` and V~ ``[B, H, M, V]``, fp32; constant size. Prefill in two
products: with w_j = s_j exp(sum_{j<t<=T} f_t) (a reverse cumulative sum, every exponent <= 0),
K~_T = sum_j k_j^T w_j and V~_T = sum_j w_j^T v_j.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor

from mixers.stream.base import State, Stepper, decay_after, work_dtype


@dataclasses.dataclass(frozen=True, eq=False)
class SlotState(State):
    hk: Tensor  # [B, H, K, M], fp32: slot keys
    hv: Tensor  # [B, H, M, V], fp32: slot values


def slot_step(hk: Tensor, hv: Tensor, q: Tensor, k: Tensor, v: Tensor, s: Tensor, f: Tensor,
              scale: float) -> tuple[Tensor, Tensor, Tensor]:
    """One step: hk [B, H, K, M], hv [B, H, M, V] (not modified); q, k [B, H, K]; v [B, H, V];
    s, f [B, H, M]. Returns ``(o [B, H, V] in v's dtype, hk_t, hv_t)``; the slot scores and
    probabilities are rounded to s's dtype, as the parallel form does."""
    B, H, K, M = hk.shape
    V, work = hv.shape[-1], hk.dtype
    decay, sf = f.to(work).exp(), s.to(work)  # [B, H, M]
    hk = hk * decay[:, :, None, :]
    hk.view(B * H, K, M).baddbmm_(k.reshape(B * H, K, 1).to(work), sf.reshape(B * H, 1, M))
    scores = torch.bmm(q.reshape(B * H, 1, K).to(work), hk.view(B * H, K, M)).mul_(scale).to(s.dtype)
    p = scores.softmax(-1, dtype=work).to(s.dtype).to(work)  # [B*H, 1, M]
    hv = hv * decay[..., None]
    hv.view(B * H, M, V).baddbmm_(sf.reshape(B * H, M, 1), v.reshape(B * H, 1, V).to(work))
    o = torch.bmm(p, hv.view(B * H, M, V))
    return o.view(B, H, V).to(v.dtype), hk, hv


class GSAStepper(Stepper):
    def __init__(self, module):
        super().__init__(module)
        self.H, self.K, self.M = module.num_heads, module.head_dim, module.num_slots

    def _gates(self, f_logits: Tensor) -> tuple[Tensor, Tensor]:
        f = F.logsigmoid(f_logits).unflatten(-1, (self.H, self.M)) / self.module.gate_logit_normalizer
        return f, 1 - f.exp()

    def _init(self, batch, device, dtype) -> SlotState:
        work, H, K, M = work_dtype(dtype), self.H, self.K, self.M
        return SlotState(length=0, hk=torch.zeros(batch, H, K, M, dtype=work, device=device),
                         hv=torch.zeros(batch, H, M, K, dtype=work, device=device))

    def _prefill(self, x: Tensor) -> SlotState:
        m, (B, T, _), work = self.module, x.shape, work_dtype(x.dtype)
        f, s = self._gates(m.f_proj(x))  # [B, T, H, M]
        k = F.silu(m.k_proj(x)).view(B, T, self.H, self.K).to(work)
        v = F.silu(m.v_proj(x)).view(B, T, self.H, self.K).to(work)
        w = (s.to(work) * decay_after(f.to(work)).exp()).transpose(1, 2)  # [B, H, T, M]
        hk = k.permute(0, 2, 3, 1) @ w  # [B, H, K, T] @ [B, H, T, M]
        hv = w.transpose(-1, -2) @ v.transpose(1, 2)  # [B, H, M, T] @ [B, H, T, V]
        return SlotState(length=T, hk=hk, hv=hv)

    def _step(self, state: SlotState, x: Tensor) -> tuple[Tensor, SlotState]:
        m, B, D, H, K = self.module, x.shape[0], self.hidden_size, self.H, self.K
        q, k, v, f_logits = self.fused_linear("qkvf", [m.q_proj, m.k_proj, m.v_proj, m.f_proj])(x)
        f, s = self._gates(f_logits)  # [B, H, M]
        q, k, v = (F.silu(y).view(B, H, K) for y in (q, k, v))
        o, hk, hv = slot_step(state.hk, state.hv, q, k, v, s, f, m.scale)
        # [B, H, V] -> [B, D]; the norm in fp32, as the parallel form
        work = work_dtype(x.dtype)
        o = F.rms_norm(F.silu(o.reshape(B, D)).to(work), (D,), m.g_norm.weight.to(work), m.g_norm.eps)
        return m.o_proj(o.to(x.dtype)), SlotState(length=state.length + 1, hk=hk, hv=hv)


def make(module) -> GSAStepper:
    return GSAStepper(module)
