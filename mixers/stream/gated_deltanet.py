"""Streaming Gated DeltaNet (``mixers.gated_deltanet``'s ``torch`` twin; Yang, Kautz and
Hatamizadeh, 2025, "Gated Delta Networks: Improving Mamba2 with Delta Rule").

DeltaNet's rule with one decay per head and step (shared machinery: ``mixers.stream.delta_rule``):

    g_t = -exp(A_log) softplus(x_t W_a + dt_bias),   beta_t = sigmoid(x_t W_b)
    y_t = (RMSNorm_V(o_t) * w * silu(x_t W_g)) W_o

State: S ``[B, H, K, V]`` (fp32) and the convolutions' window of W - 1 = 3 projected frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mixers.stream.deltanet import DeltaNetStepper


class GatedDeltaNetStepper(DeltaNetStepper):
    def _extra_layers(self):
        m = self.module
        return [m.b_proj, m.a_proj, m.g_proj]

    def _gates(self, extras: list[Tensor]) -> tuple[Tensor, Tensor]:
        m, (b, a, _) = self.module, extras
        g = -m.A_log.float().exp() * F.softplus(a.float() + m.dt_bias.float())  # [B, L, H]
        return g[..., None].expand(*g.shape, self.K), self._beta(b)

    def _output(self, o: Tensor, extras: list[Tensor]) -> Tensor:
        # Gated RMSNorm over each head's V channels in fp32, silu gate.  [B, H, V] -> [B, H*V]
        norm, B = self.module.o_norm, o.shape[0]
        gate = extras[2].view(B, self.H, self.V).float()
        of = o.float()
        of = of * torch.rsqrt(of.square().mean(-1, keepdim=True) + norm.eps) * norm.weight.float()
        return (of * F.silu(gate)).to(o.dtype).reshape(B, self.H * self.V)


def make(module) -> GatedDeltaNetStepper:
    return GatedDeltaNetStepper(module)
