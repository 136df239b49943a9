"""DeltaNet (Schlag et al., 2021; Yang et al., 2024, "Parallelizing Linear Transformers with the Delta
Rule over Sequence Length"), as fla's ``fla.layers.DeltaNet`` computes it.

Per head, with ``q, k`` L2-normalised over the key width ``K`` and state ``S: [K, V]``:

    S_t = (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T,      o_t = K^-1/2 S_t^T q_t

around it, as fla's layer does by default:

    q, k, v = silu(causal_depthwise_conv4(x W_{q,k,v}))      (short convolutions, no bias)
    beta    = sigmoid(x W_b)                                   (per head)
    y       = RMSNorm_V(o) * w  W_o                            (per head, eps 1e-5, fp32)

Configuration (hidden 1024 and 4 heads as for the paper's mixers; fla's defaults otherwise):
expand_k = expand_v = 1 (K = V = 256), short convolutions of width 4 without bias, silu q/k
activation, L2 q/k norm, beta on, no output gate, allow_neg_eigval False, ``chunk`` mode (fla
switches to ``fused_recurrent`` for T <= 64).

Kernels (one state dict serves all three):
- ``fla``: fla's layer itself, its forward returning the plain ``[B, T, D]`` tensor. Needs CUDA
  or the Triton interpreter (``bench.interpreter``).
- ``torch``: our twin: the chunked delta rule of ``mixers.cores.chunkwise_delta`` with a zero decay, run over
  segments of 2048 tokens carrying the state and the convolutions' context; any device.
- ``reference``: the twin's projections around fla's ``delta_rule_recurrence`` (a per-token loop).

``DeltaRuleTwin`` is shared with Gated DeltaNet (``mixers.gated_deltanet``), whose only change to
the recurrence is a decay per head and step.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from mixers import fla_memory
from mixers.cores import chunkwise_delta as delta_chunk
from mixers.cores.segments import run_segments
from mixers.cost import Cost, fitted_train, linear_flops
from mixers.gla import check_input, check_options
from mixers.kda import ShortConvolution, short_convolution

KERNELS = ("fla", "torch", "reference")
SEGMENT = 2048
"""Tokens per pass through the layer (a multiple of the core's chunk size)."""
PAPER_CONFIG = dict(expand_k=1.0, expand_v=1.0, conv_size=4, conv_bias=False, allow_neg_eigval=False, norm_eps=1e-5)


class RMSNorm(nn.Module):
    """RMSNorm over the last dim, times a learned weight, in fp32 (fla's ``RMSNorm``)."""

    def __init__(self, size: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x.float(), (x.shape[-1],), self.weight.float(), self.eps).to(x.dtype)


class DeltaRuleTwin(nn.Module):
    """The layer around a (gated) delta rule: projections, short convolutions, core, norm, output.

    Subclasses create the parameters (in fla's order, so state dicts match key for key) and say
    which projections feed the fused input matmul (``_input_weights``), how the log decay is made
    (``_log_decay``) and how the core output becomes the layer's (``_output``).
    """

    hidden_size: int
    num_heads: int
    head_k_dim: int
    head_v_dim: int
    allow_neg_eigval: bool
    core: str
    segment: int

    def _input_weights(self) -> list[torch.Tensor]:
        """Weights of q, k, v, beta, then any the subclass adds, for one matmul over x."""
        return [self.q_proj.weight, self.k_proj.weight, self.v_proj.weight, self.b_proj.weight]

    def _log_decay(self, extra: torch.Tensor) -> torch.Tensor | None:
        """Per-head log decay ``[B, L, H]`` from the extra projection columns, or None (no decay)."""
        return None

    def _output(self, o: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        return self.o_norm(o)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.hidden_size)
        # Every step but the convolutions and the recurrence is per token: segments of SEGMENT tokens
        # carry the state and re-project the convolutions' few tokens of left context.
        w_in = torch.cat(self._input_weights())
        return run_segments(lambda t0, t1, state: self._segment(x, t0, t1, state, w_in), x.shape[1], self.segment,
                            lambda: x.new_empty(x.shape))

    def _segment(self, x: torch.Tensor, t0: int, t1: int, state: torch.Tensor | None,
                 w_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        H, K, V = self.num_heads, self.head_k_dim, self.head_v_dim
        context = min(t0, self.q_conv1d.kernel_size[0] - 1)
        # [B, context + L, q k v | beta | extra]; only the convolutions read the context rows
        qkv, beta, extra = F.linear(x[:, t0 - context : t1], w_in).split(
            [2 * H * K + H * V, H, w_in.shape[0] - 2 * H * K - H * V - H], -1)
        convs = (self.q_conv1d, self.k_conv1d, self.v_conv1d)
        bias = None if self.q_conv1d.bias is None else torch.cat([c.bias for c in convs])
        qkv = short_convolution(qkv, torch.cat([c.weight for c in convs]), bias)[:, context:]
        q, k, v = qkv.split([H * K, H * K, H * V], -1)
        q, k, v = q.unflatten(-1, (H, K)), k.unflatten(-1, (H, K)), v.unflatten(-1, (H, V))  # [B, L, H, *]
        extra = extra[:, context:]
        beta = beta[:, context:].float().sigmoid()  # [B, L, H]
        if self.allow_neg_eigval:
            beta = beta * 2
        g = self._log_decay(extra)  # [B, L, H] or None
        if self.core == "chunk":
            # delta_chunk decays per key channel: a per-head decay is the same on every channel
            g = q.new_zeros(q.shape, dtype=torch.float32) if g is None else g.unsqueeze(-1).expand(q.shape)
            o, state = delta_chunk.chunk_gated_delta_rule(q, k, v, g, beta, initial_state=state,
                                                          output_final_state=True, qk_l2norm=True,
                                                          group_tokens=self.segment)
        else:
            o, state = _naive_core(q, k, v, g, beta, state)
        del q, k, v, g, beta, qkv
        o = self._output(o.to(x.dtype), extra)  # [B, L, H, V]
        return self.o_proj(o.flatten(-2)), state


def _naive_core(q, k, v, g, beta, state):
    """fla's step-by-step references, fed exactly what the chunked core sees."""
    q, k = delta_chunk._l2norm(q.float()), delta_chunk._l2norm(k.float())
    if g is None:
        from fla.ops.delta_rule.naive import delta_rule_recurrence

        # [B, H, T, *] in and out
        o, S = delta_rule_recurrence(*(x.transpose(1, 2) for x in (q, k, v.float(), beta)), initial_state=state)
        return o.transpose(1, 2), S
    from fla.ops.gated_delta_rule.naive import naive_recurrent_gated_delta_rule

    return naive_recurrent_gated_delta_rule(q, k, v, beta, g, initial_state=state, output_final_state=True)


class DeltaNetTwin(DeltaRuleTwin):
    """Our twin of ``fla.layers.DeltaNet``: same parameter names and shapes, same function."""

    def __init__(self, hidden_size: int = 1024, num_heads: int = 4, expand_k: float = 1.0, expand_v: float = 1.0,
                 conv_size: int = 4, conv_bias: bool = False, allow_neg_eigval: bool = False,
                 norm_eps: float = 1e-5, core: str = "chunk", segment: int = SEGMENT):
        super().__init__()
        _check_core(core, segment)
        key_dim, value_dim = round(hidden_size * expand_k), round(hidden_size * expand_v)
        if key_dim % num_heads or value_dim % num_heads:
            raise ValueError(f"key and value widths ({key_dim}, {value_dim}) must be multiples of {num_heads} heads")
        self.hidden_size, self.num_heads, self.core, self.segment = hidden_size, num_heads, core, segment
        self.head_k_dim, self.head_v_dim = key_dim // num_heads, value_dim // num_heads
        self.allow_neg_eigval = allow_neg_eigval
        self.q_proj = nn.Linear(hidden_size, key_dim, bias=False)
        self.k_proj = nn.Linear(hidden_size, key_dim, bias=False)
        self.v_proj = nn.Linear(hidden_size, value_dim, bias=False)
        self.b_proj = nn.Linear(hidden_size, num_heads, bias=False)
        self.q_conv1d = ShortConvolution(key_dim, conv_size, conv_bias)
        self.k_conv1d = ShortConvolution(key_dim, conv_size, conv_bias)
        self.v_conv1d = ShortConvolution(value_dim, conv_size, conv_bias)
        self.o_norm = RMSNorm(self.head_v_dim, eps=norm_eps)
        self.o_proj = nn.Linear(value_dim, hidden_size, bias=False)


def _check_core(core: str, segment: int) -> None:
    if core not in ("chunk", "naive"):
        raise ValueError(f"core must be 'chunk' or 'naive', got {core!r}")
    if segment <= 0 or segment % delta_chunk.CHUNK:
        raise ValueError(f"segment must be a positive multiple of {delta_chunk.CHUNK}, got {segment}")


def _fla_layer(hidden_size: int, num_heads: int, **config) -> nn.Module:
    from fla.layers import DeltaNet

    class FlaDeltaNet(DeltaNet):
        """fla's layer; forward returns only the ``[B, T, D]`` output."""

        def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
            return super().forward(hidden_states, **kwargs)[0]

    return FlaDeltaNet(hidden_size=hidden_size, num_heads=num_heads, **config)


def build(kernel: str, hidden_size: int, num_heads: int, **options) -> nn.Module:
    config = check_options("DeltaNet", options, PAPER_CONFIG)
    if kernel == "fla":
        return _fla_layer(hidden_size, num_heads, **config)
    if kernel in ("torch", "reference"):
        return DeltaNetTwin(hidden_size, num_heads, core="chunk" if kernel == "torch" else "naive", **config)
    raise ValueError(f"deltanet kernel must be one of {KERNELS}, got {kernel!r}")


def delta_cost(B: int, T: int, D: int, H: int, K: int, V: int, W: int, n_in: int, n_out_extra: int,
               params: int, e: int, kernel: str, train_per_token: tuple[float, float] | None = None) -> Cost:
    """Cost of a DeltaRuleTwin-shaped layer: ``n_in`` fused input columns, ``n_out_extra`` columns of
    other per-token projections (an output gate), ``params`` weights in all. ``train_per_token``: the
    twin's fitted (saved, total) elements per token of a training step (``mixers.cost.fitted_train``)."""
    KD, VD, C = H * K, H * V, delta_chunk.CHUNK
    projections = linear_flops(B, T, D, n_in + n_out_extra) + linear_flops(B, T, VD, D)
    convolutions = 2.0 * W * B * T * (2 * KD + VD)
    if kernel == "reference":
        core = 8.0 * B * T * H * K * V  # per step: S^T k, the rank-one update, q^T S, the decay
    else:
        # Per token and head of the chunked core (as KDA's): decayed q/k scores, the triangular
        # solve and A_qk T, T v and P v, T k and P k, and the three products with the state.
        core = B * T * H * (8.0 * C * K + 3.0 * C * C + 4.0 * C * V + 6.0 * K * V)
    state_bytes = B * H * K * V * 4 + B * (W - 1) * (2 * KD + VD) * e
    # Peak inside the core of one segment: the fused projection and the convolution outputs
    # (dtype), the fused input weights, the states entering each chunk (kept for one batched output
    # product: K x V per head every C tokens) and four [C, C] matrices per head, all in fp32; plus
    # fp32 chunk temporaries, about 3 key-wide and 3.5 value-wide ones per token (the decay
    # broadcast to K and its cumulative sum, the decayed keys; v, U and the outputs). Those two
    # counts are fitted to the probe at K = V = 64, K = 64 with V = 128 and K = 256 with V = 512
    # (within 10%; tests/mixers/test_deltanet.py and test_gated_deltanet.py).
    per_token = (n_in + 2 * KD + VD) * e + 4 * (3 * KD + 3.5 * VD + 4 * H * C + H * K * V / C)
    activation = n_in * D * e + B * min(T, SEGMENT) * per_token
    if T > SEGMENT:
        # Later segments (the second is the largest of them) beside the whole output and the state.
        later = n_in * D * e + B * min(T - SEGMENT, SEGMENT) * per_token + B * T * D * e + B * H * K * V * 4
        activation = max(activation, later)
    train = {}
    if kernel == "torch" and train_per_token is not None:
        saved, total = train_per_token
        train = fitted_train(B, T, D, e, params * e, saved_per_token=saved, total_per_token=total)
    return Cost(flops=projections + convolutions + core, activation_bytes=int(activation),
                state_bytes=state_bytes, weight_bytes=params * e, **train)


def cost(length: int, hidden_size: int, num_heads: int, batch: int, dtype_bytes: int, kernel: str,
         expand_k: float = 1.0, expand_v: float = 1.0, conv_size: int = 4, **_: object) -> Cost:
    D, H, W = hidden_size, num_heads, conv_size
    KD, VD = round(D * expand_k), round(D * expand_v)
    n_in = 2 * KD + VD + H
    params = n_in * D + W * (2 * KD + VD) + VD // H + VD * D
    # Training, elements per token fitted to the CPU probe and autograd's saved-tensor hooks
    # (fp32, 4,999 frames, 4 heads, widths 128 / 256 / 512 at expand 1, least squares within 3%).
    train = (28.92 * D + 363, 29.72 * D + 556)
    cost = delta_cost(batch, length, D, H, KD // H, VD // H, W, n_in, 0, params, dtype_bytes, kernel, train)
    if kernel != "fla":
        return cost
    return fla_delta_cost(cost, fla_memory.deltanet(batch, length, D, H, dtype_bytes, expand_k, expand_v),
                          batch * (2 * KD + VD) * dtype_bytes)


def fla_delta_cost(cost: Cost, activation: int, conv_column: int) -> Cost:
    """``cost`` with fla's own activation model and one more convolution-cache column (fla's
    short convolutions keep W inputs, the twins W - 1)."""
    return dataclasses.replace(cost, activation_bytes=activation, state_bytes=cost.state_bytes + conv_column)
