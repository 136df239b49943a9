"""Streaming Mamba2 (``mixers.mamba2``'s ``torch`` twin; Dao and Gu, 2024, SSD).

Per head h (state size N, head width P, B and C shared by the heads):

    z_t, xBC_t, dt_t = x_t W_in;   x_t, B_t, C_t = silu(conv4(xBC))_t    (the conv's window of
                                                   W - 1 = 3 projected frames is part of the state)
    dt_t = softplus(dt_t + dt_bias),   a_t = -exp(A_log) dt_t                (per head, fp32)
    S_t = exp(a_t) S_{t-1} + (dt_t B_t)^T x_t,   y_t = C_t S_t + D x_t       S: [N, P], fp32
    out_t = RMSNorm(y_t * silu(z_t)) * w  W_out

State: S ``[B, H, N, P]`` (fp32) and the window ``[B, W - 1, I + 2N]``; constant size. Prefill:
one pass for the projections and the convolution, then S_T = sum_j exp(sum_{j<t<=T} a_t)
(dt_j B_j)^T x_j in one product (every exponent <= 0).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor

from mixers.stream.base import State, Stepper, decay_after, work_dtype
from mixers.stream.short_conv import causal_conv, conv_taps


@dataclasses.dataclass(frozen=True, eq=False)
class SSMState(State):
    S: Tensor  # [B, H, N, P], fp32
    window: Tensor  # [B, W - 1, I + 2N]: the last W - 1 frames of the conv's input


class Mamba2Stepper(Stepper):
    def __init__(self, module):
        super().__init__(module)
        self.H, self.P, self.N = module.num_heads, module.head_dim, module.ssm_state_size
        self.E, self.C, self.W = module.intermediate_size, module.conv_dim, module.conv1d.kernel_size[0]

    def _features(self, x: Tensor, window: Tensor):
        """Frames ``x [B, L, D]`` after ``window``: z [B, L, I], v [B, L, H, P], k (dt B) [B, L, H, N],
        C [B, L, N], log decays a [B, L, H] (fp32) and the next window."""
        m, (B, L, _) = self.module, x.shape
        z, xBC, dt = m.in_proj(x).split([self.E, self.C, self.H], -1)
        taps = self.derived("taps", [m.conv1d.weight], lambda: conv_taps([m.conv1d.weight]))
        xBC, window = causal_conv(window, xBC, taps, m.conv1d.bias)
        xs, Bm, Cm = xBC.split([self.E, self.N, self.N], -1)
        dt = F.softplus(dt.float() + m.dt_bias.float())  # [B, L, H]
        a = -m.A_log.float().exp() * dt
        k = Bm.unsqueeze(2) * dt.unsqueeze(-1).to(Bm.dtype)  # [B, L, H, N], in x's dtype as the twin
        return z, xs.view(B, L, self.H, self.P), k, Cm, a, window

    def _init(self, batch, device, dtype) -> SSMState:
        return SSMState(length=0, S=torch.zeros(batch, self.H, self.N, self.P, dtype=work_dtype(dtype), device=device),
                        window=torch.zeros(batch, self.W - 1, self.C, dtype=dtype, device=device))

    def _prefill(self, x: Tensor) -> SSMState:
        empty, work = self._init(x.shape[0], x.device, x.dtype), work_dtype(x.dtype)
        _, v, k, _, a, window = self._features(x, empty.window)
        # [B, H, N, T] @ [B, H, T, P]
        S = (k.to(work) * decay_after(a.to(work)).exp()[..., None]).permute(0, 2, 3, 1) @ v.to(work).transpose(1, 2)
        return SSMState(length=x.shape[1], S=S, window=window)

    def _step(self, state: SSMState, x: Tensor) -> tuple[Tensor, SSMState]:
        m, B, H, N, P = self.module, x.shape[0], self.H, self.N, self.P
        z, v, k, Cm, a, window = self._features(x[:, None], state.window)
        z, v, k, Cm, a = z[:, 0], v[:, 0], k[:, 0], Cm[:, 0], a[:, 0]
        work = state.S.dtype
        S = state.S * a.to(work).exp()[..., None, None]  # a new tensor: the input state is left alone
        S.view(B * H, N, P).baddbmm_(k.reshape(B * H, N, 1).to(work), v.reshape(B * H, 1, P).to(work))
        # y = C S (C shared by the heads): [B, 1, N] @ [B, N, H*P] -> [B, H, P]
        y = torch.bmm(Cm.to(work)[:, None], S.transpose(1, 2).reshape(B, N, H * P)).view(B, H, P)
        y = (y.to(x.dtype) + v * m.D.to(v.dtype)[:, None]).flatten(-2)  # D skip, [B, I]
        # Gated RMSNorm (norm after the gate) in fp32.
        g = y.to(work) * F.silu(z.to(work))
        g = F.rms_norm(g, (self.E,), m.norm.weight.to(work), m.norm.eps).to(x.dtype)
        return m.out_proj(g), SSMState(length=state.length + 1, S=S, window=window)


def make(module) -> Mamba2Stepper:
    return Mamba2Stepper(module)
