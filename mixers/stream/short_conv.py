"""A causal depthwise convolution (width W) run over a window of the last W - 1 inputs: the
streaming form of the short convolutions in KDA, DeltaNet, Gated DeltaNet and Mamba2.

    y_t = silu(sum_{i<W} taps_i x_{t-W+1+i} (+ bias)),   computed in fp32

The window (zeros before the stream starts, as the parallel forms' left padding) is part of
those mixers' state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def conv_taps(weights: list[Tensor]) -> Tensor:
    """Conv1d depthwise weights ``[C_i, 1, W]`` (concatenated over channels) as ``[W, C]`` fp32 rows."""
    return torch.cat([w[:, 0, :] for w in weights]).t().float().contiguous()


def causal_conv(window: Tensor, x: Tensor, taps: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor]:
    """``x [B, L, C]`` after ``window [B, W-1, C]``: ``(silu(conv) [B, L, C] in x's dtype, next window)``."""
    W, L = taps.shape[0], x.shape[1]
    frames = torch.cat((window, x), dim=1)  # [B, W - 1 + L, C]
    # The twins' order (current frame and bias first, then older frames): the same fp32 sums.
    y = frames[:, W - 1 :].float() * taps[-1]
    if bias is not None:
        y = y + bias.float()
    for shift in range(1, W):
        y.addcmul_(frames[:, W - 1 - shift : W - 1 - shift + L].float(), taps[W - 1 - shift])
    return F.silu(y).to(x.dtype), frames[:, frames.shape[1] - (W - 1):].clone()
