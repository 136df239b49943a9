"""A growing key/value cache: the recurrent state of softmax attention and FoX.

Rows are per head and frame, ``[B, H, capacity, *]``; the state is the first ``length`` frames.
Appending writes frame ``length`` into spare capacity of the same buffers and returns a new
state of ``length + 1``: no copy of the cache per frame (a copy would cost as much as the
attention itself). The parent state still sees exactly its own frames, so stepping one state
repeatedly gives the same output every time; but its children share the slot past its end, so
of two children stepped from one parent only the latest holds its own frame (``clone`` first
to branch). When the buffers are full they are copied into larger ones (``grow``: 1.25x plus
64 frames, amortised O(1) per frame).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from mixers.stream.base import State


def grow(length: int) -> int:
    """Capacity for ``length`` frames with headroom: at least one spare slot, 1.25x + 64."""
    return length + max(64, length // 4)


@dataclasses.dataclass(frozen=True, eq=False)
class KVCache(State):
    """``buffers``: keys ``[B, H, capacity, K]``, values ``[B, H, capacity, V]`` and any per-frame
    extras (FoX's cumulative log forget gates ``[B, H, capacity]``); frames ``[0, length)`` are valid."""

    buffers: tuple[Tensor, ...] = ()

    @classmethod
    def empty(cls, shapes: list[tuple[int, ...]], dtypes: list[torch.dtype], device: torch.device) -> KVCache:
        """No frames; ``shapes`` are ``(B, H, *row)`` per buffer."""
        return cls(length=0, buffers=tuple(torch.empty(s[:2] + (grow(0),) + s[2:], dtype=d, device=device)
                                           for s, d in zip(shapes, dtypes)))

    @classmethod
    def of(cls, tensors: list[Tensor]) -> KVCache:
        """A cache holding ``tensors [B, H, T, *]`` (copied into buffers with headroom)."""
        length = tensors[0].shape[2]
        return cls(length=length, buffers=tuple(_buffer(t, grow(length)) for t in tensors))

    @property
    def capacity(self) -> int:
        return self.buffers[0].shape[2]

    def tensors(self) -> tuple[Tensor, ...]:
        """The valid frames of each buffer, ``[B, H, length, *]`` views."""
        return tuple(b[:, :, : self.length] for b in self.buffers)

    def allocated_bytes(self) -> int:
        """Bytes held including spare capacity."""
        return sum(b.numel() * b.element_size() for b in self.buffers)

    def append(self, rows: list[Tensor]) -> KVCache:
        """The cache with one more frame, ``rows [B, H, *]`` per buffer (see the module docstring)."""
        buffers = self.buffers
        # Full, or made under inference_mode and stepped outside it (inference tensors cannot be
        # written there): copy into new buffers.
        if self.length == self.capacity or (buffers[0].is_inference() and not torch.is_inference_mode_enabled()):
            buffers = tuple(_buffer(t, grow(self.length)) for t in self.tensors())
        for buffer, row in zip(buffers, rows):
            buffer[:, :, self.length] = row
        return KVCache(length=self.length + 1, buffers=buffers)

    def clone(self) -> KVCache:
        return KVCache(length=self.length, buffers=tuple(_buffer(t, grow(self.length)) for t in self.tensors()))


def _buffer(t: Tensor, capacity: int) -> Tensor:
    """A ``[B, H, capacity, *]`` buffer whose first frames are a copy of ``t [B, H, T, *]``."""
    buffer = t.new_empty(t.shape[:2] + (capacity,) + t.shape[3:])
    buffer[:, :, : t.shape[2]] = t
    return buffer
