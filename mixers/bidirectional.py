"""A bidirectional mixer from two causal ones: one reads the sequence forward, the other backward.

As in bidirectional RNNs (Schuster and Paliwal, 1997) and the bidirectional linear-attention
encoders built since (e.g. Vision Mamba's forward/backward scans), with F and G two copies of
one causal mixer that have their OWN weights (built independently, not shared):

    a = F(x)                         [B, T, D]   output t sees x_1..x_t
    b = flip(G(flip(x)))             [B, T, D]   output t sees x_t..x_T
    y = a + b                        combine="sum" (the default: no extra parameters)
    y = [a; b] W_c                   combine="concat": W_c projects 2D -> D, no bias

SER classifies whole utterances, so every frame may see the whole input; a causal recurrence
needs this wrapper to do so. ``flip`` is along time; padding is the caller's concern, as for the
forward mixer alone (a right-padded batch feeds padding to G first).
"""

from __future__ import annotations

import torch
from torch import nn

from mixers.cost import Cost, linear_flops

COMBINES = ("sum", "concat")


class Bidirectional(nn.Module):
    """``forward_mixer`` on x plus ``backward_mixer`` on x reversed in time, joined by ``combine``."""

    def __init__(self, forward_mixer: nn.Module, backward_mixer: nn.Module, hidden_size: int,
                 combine: str = "sum"):
        super().__init__()
        if combine not in COMBINES:
            raise ValueError(f"combine must be one of {COMBINES}, got {combine!r}")
        if forward_mixer is backward_mixer:
            raise ValueError("the two directions need their own mixers (weights are not shared)")
        self.forward_mixer, self.backward_mixer, self.combine = forward_mixer, backward_mixer, combine
        self.hidden_size = hidden_size
        if combine == "concat":
            self.proj = nn.Linear(2 * hidden_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [B, T, D] each; the backward direction sees time reversed and is flipped back
        a = self.forward_mixer(x)
        b = self.backward_mixer(x.flip(1)).flip(1)
        if self.combine == "sum":
            return a + b
        return self.proj(torch.cat([a, b], dim=-1))


def build(name: str, hidden_size: int = 1024, num_heads: int = 4, kernel: str = "auto",
          combine: str = "sum", device: str | torch.device | None = None, **options) -> Bidirectional:
    """Two independently initialised copies of mixer ``name`` as one bidirectional mixer.

    Softmax attention is built causal (``causal=True``) in both directions, so that the wrapper,
    not the mask, is what lets a frame see the future.
    """
    import mixers

    if name == "sa":
        if options.get("causal") is False:
            raise ValueError("a bidirectional SA is built from causal SA; drop causal=False")
        options = {**options, "causal": True}
    forward_mixer = mixers.build(name, hidden_size, num_heads, kernel=kernel, device=device, **options)
    backward_mixer = mixers.build(name, hidden_size, num_heads, kernel=kernel, device=device, **options)
    module = Bidirectional(forward_mixer, backward_mixer, hidden_size, combine=combine)
    module.mixer_name, module.kernel = name, forward_mixer.kernel
    return module


def cost(one: Cost, length: int, hidden_size: int, batch: int, dtype_bytes: int, combine: str = "sum") -> Cost:
    """The wrapper's cost from one direction's ``one``: two mixers run one after the other.

    Peak: one direction's activations beside the other's output, the flipped input and output
    (two token tensors); ``concat`` adds the [B, T, 2D] concatenation. Training: both directions'
    saved activations are alive when the backward starts, and the backward peak is one direction's.
    """
    token = batch * length * hidden_size * dtype_bytes
    extra_flops = batch * length * hidden_size  # the sum
    extra_weights = 0
    join = token
    if combine == "concat":
        extra_flops = linear_flops(batch, length, 2 * hidden_size, hidden_size)
        extra_weights = 2 * hidden_size * hidden_size * dtype_bytes
        join = 3 * token
    saved = backward = None
    if one.saved_bytes is not None:
        # Saved: both directions' saved sets (the flipped input counted in each) and the join's inputs.
        saved = 2 * one.saved_bytes + token + (2 * token if combine == "concat" else 0)
        backward = one.backward_bytes + 2 * token + extra_weights
    return Cost(flops=2 * one.flops + extra_flops, activation_bytes=one.activation_bytes + token + join,
                state_bytes=2 * one.state_bytes, weight_bytes=2 * one.weight_bytes + extra_weights,
                saved_bytes=saved, backward_bytes=backward)
