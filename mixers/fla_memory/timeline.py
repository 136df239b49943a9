"""What a caching allocator sees of one forward: tensors made and released in order.

fla's layers allocate their outputs, gates, intermediate blocks and per-chunk states in Python
(``torch.empty``, ``new_empty``, the projections' matmuls) before each Triton launch; the kernels
allocate nothing (fla 0.6 registers a Triton allocator only for TMA, off unless ``FLA_USE_TMA=1``,
and on Blackwell). So the peak above weights and input is the largest sum of live tensors along
the forward, and the order in which Python drops them matters: a ``Timeline`` replays that order.
The CUDA allocator's rounding (to 512 bytes) is negligible at these sizes.
"""

from __future__ import annotations

CHUNK = 64
"""fla's chunk length: every chunked kernel here keeps one state per 64 tokens."""


class Timeline:
    """Live tensors by name; ``peak`` is the most bytes alive at once."""

    def __init__(self) -> None:
        self.live: dict[str, int] = {}
        self.peak = 0

    def alloc(self, **sizes: float) -> Timeline:
        """Make tensors, in keyword order (the peak is checked after each)."""
        for name, nbytes in sizes.items():
            if name in self.live:
                raise ValueError(f"tensor {name!r} is already alive")
            self.live[name] = int(nbytes)
            self.peak = max(self.peak, sum(self.live.values()))
        return self

    def free(self, *names: str) -> Timeline:
        for name in names:
            del self.live[name]
        return self


def chunks(length: int) -> int:
    """Number of fla chunks over ``length`` tokens."""
    return -(-length // CHUNK)


def chunk_states(batch: int, length: int, heads: int, k: int, v: int, dtype_bytes: int) -> int:
    """Bytes of the per-chunk states ``h [B, NT, H, K, V]`` a two-stage chunk kernel keeps even at
    inference (``ops/common/chunk_h.py``, ``chunk_delta_h.py``): in the input's dtype, and read
    back by the output stage, so they are alive together with it."""
    return batch * chunks(length) * heads * k * v * dtype_bytes
