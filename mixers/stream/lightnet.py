"""Streaming LightNet (``mixers.lightnet``'s ``torch`` twin; Qin et al., 2024, "You Only Scan Once").

LightNet's gate normalises the keys by a running log-sum-exp z over time, per key channel:

    q_t = silu(x_t W_q),  u_t = x_t W_k,  v_t = x_t W_v
    z_t = logaddexp(z_{t-1}, u_t)                  (z_{-1} = -inf)
    k_t = exp(u_t - z_t),  g_t = z_{t-1} - z_t     (the decay; 0 at the first frame)
    S_t = diag(exp g_t) S_{t-1} + k_t^T v_t,   o_t = F^-1/2 q_t S_t
    y_t = (RMSNorm(o_t) * w * silu(x_t W_g1 W_g2)) W_o      (RMS over all D channels, fp32)

State: S ``[B, H, F, V]`` and z ``[B, H, F]``, both fp32; constant size.
Prefill in one product: S_T = sum_j exp(u_j - z_T)^T v_j, with z_T = logsumexp_j u_j
(every exponent <= 0).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor

from mixers.stream.base import State, Stepper, work_dtype


@dataclasses.dataclass(frozen=True, eq=False)
class LightNetState(State):
    S: Tensor  # [B, H, F, V], fp32
    z: Tensor  # [B, H, F], fp32: log sum_{j<=t} exp(u_j); -inf before the first frame


def lightnet_step(S: Tensor, z: Tensor, q: Tensor, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One step: S [B, H, F, V] and z [B, H, F] (not modified); q, u [B, H, F]; v [B, H, V].

    Returns ``(o [B, H, V] fp32, S_t, z_t)``. k and g are rounded to u's dtype, as the parallel
    form feeds them to its core."""
    B, H, Fk, V = S.shape
    uf = u.to(S.dtype)
    z_new = torch.logaddexp(z, uf)
    k = (uf - z_new).exp().to(u.dtype).to(S.dtype)
    decay = (z - z_new).to(u.dtype).to(S.dtype).exp()  # exp(-inf) = 0 at the first frame, where S = 0
    S = S * decay[..., None]
    S.view(B * H, Fk, V).baddbmm_(k.reshape(B * H, Fk, 1), v.reshape(B * H, 1, V).to(S.dtype))
    o = torch.bmm(q.reshape(B * H, 1, Fk).to(S.dtype), S.view(B * H, Fk, V)).mul_(Fk**-0.5)
    return o.view(B, H, V), S, z_new


class LightNetStepper(Stepper):
    def __init__(self, module):
        super().__init__(module)
        self.H, self.F, self.V = module.num_heads, module.head_f_dim, module.head_v_dim

    def _init(self, batch, device, dtype) -> LightNetState:
        work = work_dtype(dtype)
        return LightNetState(length=0, S=torch.zeros(batch, self.H, self.F, self.V, dtype=work, device=device),
                             z=torch.full((batch, self.H, self.F), float("-inf"), dtype=work, device=device))

    def _prefill(self, x: Tensor) -> LightNetState:
        m, (B, T, _), work = self.module, x.shape, work_dtype(x.dtype)
        u = m.k_proj(x).view(B, T, self.H, self.F).to(work)
        v = m.v_proj(x).view(B, T, self.H, self.V).to(work)
        z = torch.logsumexp(u, dim=1)  # [B, H, F]
        # [B, H, F, T] @ [B, H, T, V]
        S = (u - z[:, None]).exp().permute(0, 2, 3, 1) @ v.transpose(1, 2)
        return LightNetState(length=T, S=S, z=z)

    def _step(self, state: LightNetState, x: Tensor) -> tuple[Tensor, LightNetState]:
        m, B, D = self.module, x.shape[0], self.hidden_size
        q, u, v, g_low = self.fused_linear("qkvg", [m.q_proj, m.k_proj, m.v_proj, m.g_proj[0]])(x)
        q = F.silu(q).view(B, self.H, self.F)
        o, S, z = lightnet_step(state.S, state.z, q, u.view(B, self.H, self.F), v.view(B, self.H, self.V))
        # [B, H, V] -> [B, D]; norm and gate in fp32, as the parallel form
        work = work_dtype(x.dtype)
        o = F.rms_norm(o.to(x.dtype).reshape(B, D).to(work), (D,), m.g_norm.weight.to(work), m.g_norm.eps)
        o = (o * F.silu(m.g_proj[1](g_low).to(work))).to(x.dtype)
        return m.o_proj(o), LightNetState(length=state.length + 1, S=S, z=z)


def make(module) -> LightNetStepper:
    return LightNetStepper(module)
