"""The analytical cost record every mixer's ``cost()`` returns.

Counts are for one forward pass at inference (no autograd graph kept), so the harness can
predict whether a cell fits in memory and plots can draw roofline bounds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cost:
    flops: float
    """Floating-point operations of the forward pass (a multiply-add counts as 2)."""
    activation_bytes: int
    """Peak bytes the forward allocates above weights and input (the memory probe's ``above``)."""
    state_bytes: int
    """Bytes of recurrent state carried from one step to the next (for softmax attention, the KV cache)."""
    weight_bytes: int
    """Bytes of the mixer's parameters."""


def linear_flops(batch: int, length: int, d_in: int, d_out: int) -> float:
    """A dense projection: one multiply-add per weight per token."""
    return 2.0 * batch * length * d_in * d_out
