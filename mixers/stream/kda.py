"""Streaming Kimi Delta Attention (``mixers.kda``'s ``torch`` twin; Kimi Team, "Kimi Linear", 2025).

A gated delta rule with a forget gate per key channel, behind short convolutions (the shared
machinery and the recurrence: ``mixers.stream.delta_rule``):

    g_t = -exp(A_log) softplus(x_t W_f1 W_f2 + dt_bias)     [H, K],   beta_t = sigmoid(x_t W_b)
    y_t = (RMSNorm_V(o_t) * w * sigmoid(x_t W_g1 W_g2 + b_g)) W_o

State: S ``[B, H, K, V]`` (fp32) and the convolutions' window of W - 1 = 3 projected frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mixers.stream.delta_rule import DeltaRuleStepper


class KDAStepper(DeltaRuleStepper):
    def _extra_layers(self):
        m = self.module
        return [m.f_proj[0], m.g_proj[0], m.b_proj]

    def _gates(self, extras: list[Tensor]) -> tuple[Tensor, Tensor]:
        m, (f_low, _, b) = self.module, extras
        B, L, _ = f_low.shape
        g = F.softplus(F.linear(f_low.float(), m.f_proj[1].weight.float(), m.dt_bias.float()))
        g = g.view(B, L, self.H, self.K) * -m.A_log.float().exp()[:, None]
        return g, b.float().sigmoid() * (2 if m.allow_neg_eigval else 1)

    def _output(self, o: Tensor, extras: list[Tensor]) -> Tensor:
        # Gated RMSNorm over each head's V channels in fp32.  [B, H, V] -> [B, H*V]
        m, B = self.module, o.shape[0]
        gate = m.g_proj[1](extras[1]).view(B, self.H, self.V).float()
        of = o.float()
        of = of * torch.rsqrt(of.square().mean(-1, keepdim=True) + m.o_norm.eps) * m.o_norm.weight.float()
        return (of * torch.sigmoid(gate)).to(o.dtype).reshape(B, self.H * self.V)


def make(module) -> KDAStepper:
    return KDAStepper(module)
