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


def fitted_train(batch: int, length: int, hidden_size: int, dtype_bytes: int, weight_bytes: int,
                 saved_per_token: float, total_per_token: float) -> dict:
    """``saved_bytes`` and ``backward_bytes`` from per-token element counts of a training step.

    ``saved_per_token``: elements autograd saves per token (its saved-tensor hooks' count);
    ``total_per_token``: the step's measured peak per token, minus the parameters' gradients.
    The output (``hidden_size`` per token) is added to the saved set; the backward holds every
    parameter's gradient at its peak (an upper bound: some are made after it).
    """
    tokens = batch * length
    saved = tokens * (saved_per_token + hidden_size) * dtype_bytes
    backward = max(0.0, total_per_token - saved_per_token - hidden_size) * tokens * dtype_bytes + weight_bytes
    return {"saved_bytes": int(saved), "backward_bytes": int(backward)}
