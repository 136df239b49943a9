"""The analytical cost record every mixer's ``cost()`` returns.

Counts are for one forward pass at inference (no autograd graph kept), so the harness can
predict whether a cell fits in memory and plots can draw roofline bounds; ``saved_bytes`` and
``backward_bytes`` add a training step (forward, then backward of a scalar loss to the input and
every parameter), whose peak above weights and input is ``train_bytes``.
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
    saved_bytes: int | None = None
    """Training: bytes alive when the forward returns with autograd on (tensors saved for the
    backward, and the output itself). None when the mixer has no training estimate."""
    backward_bytes: int | None = None
    """Training: the backward's peak above ``saved_bytes`` (the output's and parameters' gradients,
    the input's gradient and the largest transient), all while the saved tensors are alive."""

    @property
    def train_bytes(self) -> int | None:
        """Predicted peak above weights and input of forward + backward (the probe's ``above``)."""
        if self.saved_bytes is None or self.backward_bytes is None:
            return None
        return self.saved_bytes + self.backward_bytes


def linear_flops(batch: int, length: int, d_in: int, d_out: int) -> float:
    """A dense projection: one multiply-add per weight per token."""
    return 2.0 * batch * length * d_in * d_out
