"""Streaming DeltaNet (``mixers.deltanet``'s ``torch`` twin; Yang et al., 2024, "Parallelizing
Linear Transformers with the Delta Rule over Sequence Length").

The delta rule without decay behind short convolutions (the shared machinery and the recurrence:
``mixers.stream.delta_rule``), with beta_t = sigmoid(x_t W_b) and y_t = RMSNorm_V(o_t) * w  W_o.

State: S ``[B, H, K, V]`` (fp32) and the convolutions' window of W - 1 = 3 projected frames.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from mixers.stream.delta_rule import DeltaRuleStepper


class DeltaNetStepper(DeltaRuleStepper):
    def _extra_layers(self):
        return [self.module.b_proj]

    def _beta(self, b: Tensor) -> Tensor:
        return b.float().sigmoid() * (2 if self.module.allow_neg_eigval else 1)

    def _gates(self, extras: list[Tensor]) -> tuple[None, Tensor]:
        return None, self._beta(extras[0])

    def _output(self, o: Tensor, extras: list[Tensor]) -> Tensor:
        norm, B = self.module.o_norm, o.shape[0]
        o = F.rms_norm(o.float(), (self.V,), norm.weight.float(), norm.eps).to(o.dtype)
        return o.reshape(B, self.H * self.V)


def make(module) -> DeltaNetStepper:
    return DeltaNetStepper(module)
