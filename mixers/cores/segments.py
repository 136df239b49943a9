"""Run a recurrent layer over time segments, carrying its state: linear time, segment-sized scratch.

The chunkwise twins (RetNet, LightNet, GSA, KDA, GLA, HGRN2, DeltaNet, Mamba-2) compute
everything but their recurrence token by token, so a long input can be cut into segments: each
segment's projections and core scratch are freed before the next is made, and only the recurrent
state crosses segment borders. The result is the same as one pass (tests/mixers check it at
borders that fall inside and between chunks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

State = TypeVar("State")


def run_segments(step: Callable[[int, int, State | None], tuple[torch.Tensor, State]], length: int, segment: int,
                 allocate: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``step(t0, t1, state) -> (y [B, t1 - t0, ...], state)`` over ``[0, length)`` in segments.

    One segment returns ``step``'s own output; longer inputs write each segment into
    ``allocate()`` (a ``[B, length, ...]`` tensor, made only then) and return it.
    """
    if segment < 1:
        raise ValueError(f"segment must be a positive number of steps, got {segment}")
    if length <= segment:
        return step(0, length, None)[0]
    out, state = allocate(), None
    for t0 in range(0, length, segment):
        t1 = min(t0 + segment, length)
        out[:, t0:t1], state = step(t0, t1, state)
    return out
