"""RWKV-7 "Goose" (Peng et al., 2025, "RWKV-7 'Goose' with Expressive Dynamic State Evolution"), as
fla's ``fla.layers.RWKV7Attention`` computes it. Registered for the ``fla`` kernel only: no PyTorch
twin yet (``bench verify`` says so, and CPU sweeps leave it out: ``mixers.names``).

Per head, with key and value width K = V = D / H, the generalised delta rule with a per-channel
decay and a rank-one correction whose two vectors differ (fla's DPLR form):

    S_t = S_{t-1} (diag(exp(w_t)) - kk_t^T (kk_t * a_t)) + v_t^T k_t,       o_t = S_t r_t
    w_t = -e^{-1/2} sigmoid(lora_w(x_t^w))     kk = L2norm(k * k_k)     a_t = sigmoid(lora_a(x_t^a))

where each x^* lerps the input with its one-step token shift, r, k, v are projections, k is
rescaled by a (``k * (1 + (a - 1) k_a)``), and the output is GroupNorm(o) plus the bonus
``(r * k * r_k) v`` per head, times the gate ``lora_g``, through W_o.

Configuration (hidden 1024 and 4 heads as for the paper's mixers; fla's defaults otherwise): fla
ties heads to ``head_dim`` (default 64, i.e. 16 heads), so the layer is built with head_dim None
and 4 heads (K = V = 256); the low-rank widths follow fla's formulas for that head width (w and a:
320, g: 160). As a single mixer it is the first layer (``layer_idx=0``: no value residual, no
``v_lora``) of a 12-layer model (``num_hidden_layers=12``, which only sets the initial GroupNorm
weight). fla initialises ``o_proj`` to zeros, so the freshly built layer outputs zeros: timings are
unaffected, parity checks must load other weights first. ``chunk`` mode; fla uses its fused
recurrent kernel only in eval mode under no_grad for T < 64.
"""

from __future__ import annotations

import torch
from torch import nn

from mixers import fla_memory
from mixers.cost import Cost, linear_flops
from mixers.gla import check_options

KERNELS = ("fla",)
PAPER_CONFIG = dict(layer_idx=0, num_hidden_layers=12, norm_eps=1e-5)


def low_rank_dims(hidden_size: int, head_dim: int) -> tuple[int, int, int]:
    """fla's default LoRA widths (decay, gate, a) for ``hidden_size`` and ``head_dim``."""
    factor = head_dim / 64
    decay = max(32, int(round((2.5 * hidden_size**0.5) * factor / 32) * 32))
    gate = max(32, int(round((5 * hidden_size**0.5) / 32) * 32))
    return decay, gate, decay


def _fla_layer(hidden_size: int, num_heads: int, **config) -> nn.Module:
    from fla.layers import RWKV7Attention

    class FlaRWKV7(RWKV7Attention):
        """fla's layer; forward returns only the ``[B, T, D]`` output (fla returns ``(o, None, cache, v_first)``)."""

        def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
            return super().forward(hidden_states, **kwargs)[0]

    return FlaRWKV7(hidden_size=hidden_size, num_heads=num_heads, head_dim=None, **config)


def build(kernel: str, hidden_size: int, num_heads: int, **options) -> nn.Module:
    config = check_options("RWKV-7", options, PAPER_CONFIG)
    if kernel != "fla":
        raise ValueError(f"rwkv7 has only fla's kernel (no torch twin yet), got {kernel!r}")
    if config["num_hidden_layers"] < 2:
        raise ValueError(f"num_hidden_layers must be at least 2 (fla's initialisation divides by n - 1), "
                         f"got {config['num_hidden_layers']}")
    return _fla_layer(hidden_size, num_heads, **config)


def cost(length: int, hidden_size: int, num_heads: int, batch: int, dtype_bytes: int, kernel: str,
         layer_idx: int = 0, **_: object) -> Cost:
    B, T, D, H, e = batch, length, hidden_size, num_heads, dtype_bytes
    K = D // H
    r_w, r_g, r_a = low_rank_dims(D, K)
    v_lora = layer_idx != 0
    r_v = max(32, int(round((1.7 * D**0.5) * (K / 64) / 32) * 32))
    # r, k, v, o projections and the LoRAs (w, a, g; v beyond the first layer)
    projections = 4 * linear_flops(B, T, D, D) + 2 * sum(
        linear_flops(B, T, D, r) for r in (r_w, r_a, r_g) + ((r_v,) if v_lora else ()))
    elementwise = 40.0 * B * T * D  # token shift and six lerps, gates, kk, k update, norm, bonus, gate
    C = 64
    # fla's chunked DPLR kernels, per token and head (an estimate from their structure, like the
    # delta rule's with two rank-one vectors): the within-chunk score matrices, the triangular
    # solve, the pseudo-values and the products with the per-chunk state.
    core = B * T * H * (12.0 * C * K + 3.0 * C * C + 4.0 * C * K + 8.0 * K * K)
    lora_params = (D * r_w + r_w * D + D) + (D * r_a + r_a * D + D) + (D * r_g + r_g * D)
    if v_lora:
        lora_params += D * r_v + r_v * D + D
    params = 8 * D + H * K + 4 * D * D + lora_params + 2 * D
    activation = fla_memory.rwkv7(B, T, D, H, e, (r_w, r_g, r_a))
    return Cost(flops=projections + elementwise + core, activation_bytes=activation,
                state_bytes=B * H * K * K * 4 + B * D * e, weight_bytes=params * e)
