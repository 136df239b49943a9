"""Streaming forgetting attention (``mixers.fox``'s ``torch`` twin; Lin et al., 2025, FoX).

Softmax attention over a KV cache, biased by cumulative log forget gates (one per head):

    f_t = logsigmoid(x_t W_f + b_f),   F_t = F_{t-1} + f_t              fp32 per head
    o_t = sum_{j<=t} softmax_j(q_t k_j / sqrt(K) + F_t - F_j) v_j
    y_t = ([sigmoid(x_t W_g) *] o_t) W_o

State: the cache of k, v (activations' dtype) and F (fp32) for every frame seen, growing with
T like softmax attention's, plus the running sum of f per head in fp64: F_t is that sum rounded
to fp32, as the parallel form's fp32 ``cumsum`` (which accumulates in fp64 on CPU) makes it.
Weights below e^-87 of a row's maximum, which the parallel form flushes to zero, are below
fp32's resolution of the row sum.

Precision at long T. |F| grows like 0.7 T with random-init gates, and F_t - F_j is taken from
two fp32 numbers of that size: one ulp of F (1.2e-4 at T = 2100) is a relative error of the
weights. A frame's gate logit from one [1, D] product and the parallel form's [T, D] product
round differently, which can move F by one ulp, so at T = 2100 the step, the parallel twin and
fla's naive reference agree pairwise to about 3e-5, not 1e-6 as at T < 500 (every form of FoX
shares this). Accumulating F in fp32 frame by frame would be ~10x worse (measured: F_t - F_{t-150}
off by 1.4e-3 instead of 1.2e-4 at T = 2100), hence the fp64 sum.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor

from mixers.stream.base import State, Stepper, work_dtype
from mixers.stream.kv_cache import KVCache


@dataclasses.dataclass(frozen=True, eq=False)
class ForgettingState(State):
    cache: KVCache  # keys [B, H, t, K], values [B, H, t, V], F [B, H, t] (fp32)
    total: Tensor  # [B, H], fp64: sum of the log forget gates so far

    def tensors(self) -> tuple[Tensor, ...]:
        return self.cache.tensors() + (self.total,)

    def clone(self) -> ForgettingState:
        return ForgettingState(length=self.length, cache=self.cache.clone(), total=self.total.clone())


class ForgettingAttentionStepper(Stepper):
    def __init__(self, module):
        super().__init__(module)
        self.H, self.K = module.num_heads, module.head_dim

    def _heads(self, y: Tensor) -> Tensor:
        # [B, T, H*K] -> [B, H, T, K]
        return y.unflatten(-1, (self.H, self.K)).transpose(1, 2)

    def _init(self, batch, device, dtype) -> ForgettingState:
        shape, gate = (batch, self.H, self.K), work_dtype(dtype)
        cache = KVCache.empty([shape, shape, (batch, self.H)], [dtype, dtype, gate], device)
        return ForgettingState(length=0, cache=cache, total=torch.zeros(batch, self.H, dtype=torch.float64,
                                                                        device=device))

    def _prefill(self, x: Tensor) -> ForgettingState:
        m, T = self.module, x.shape[1]
        # [B, H, T]: gates in fp32 as the parallel form (fla's), summed in the work dtype
        f = F.logsigmoid(m.f_proj(x).float()).to(work_dtype(x.dtype)).transpose(1, 2)
        cumulative = f.cumsum(-1)  # as the parallel form: fp32 out, fp64 accumulation on CPU
        total = f.double().sum(-1)
        cache = KVCache.of([self._heads(m.k_proj(x)), self._heads(m.v_proj(x)), cumulative])
        return ForgettingState(length=T, cache=cache, total=total)

    def _step(self, state: ForgettingState, x: Tensor) -> tuple[Tensor, ForgettingState]:
        m, B, work = self.module, x.shape[0], work_dtype(x.dtype)
        q, k, v, f_logits = self.fused_linear("qkvf", [m.q_proj, m.k_proj, m.v_proj, m.f_proj])(x)
        q, k, v = (y.view(B, self.H, self.K) for y in (q, k, v))
        total = state.total + F.logsigmoid(f_logits.float()).double()  # [B, H]
        F_t = total.to(work)
        cache = state.cache.append([k, v, F_t])
        keys, values, cumulative = cache.tensors()  # [B, H, t + 1, *]
        # [B, H, 1, t + 1]: forget bias plus scaled q k, in fp32 as the parallel form (a bf16 cache
        # is upcast per step, as the parallel form upcasts each key block)
        scores = (F_t[..., None] - cumulative)[:, :, None]
        scores = scores + (q.to(work) * self.K**-0.5)[:, :, None] @ keys.to(work).transpose(-1, -2)
        o = (scores.softmax(-1) @ values.to(work)).to(v.dtype)  # [B, H, 1, V]
        o = o.reshape(B, self.H * self.K)
        if m.use_output_gate:
            o = m.g_proj(x).sigmoid() * o
        return m.o_proj(o), ForgettingState(length=state.length + 1, cache=cache, total=total)


def make(module) -> ForgettingAttentionStepper:
    return ForgettingAttentionStepper(module)
