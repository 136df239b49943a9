"""Shards: one sweep split across several jobs or GPUs (a cluster job array).

``--shard K/N`` takes every N-th cell of the grid in its anytime order (``bench.order``), starting
at cell K. K counts from 0, so a SLURM array ``--array=0-(N-1)`` passes ``$SLURM_ARRAY_TASK_ID``
as it is: ``bench sweep --shard $SLURM_ARRAY_TASK_ID/N``. The N shards together hold every cell of
the grid exactly once, and each writes its own file (the shard in its name, ``shard`` in its header).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    index: int
    """K: which shard, from 0."""
    count: int
    """N: how many shards split the grid."""

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def file_suffix(self) -> str:
        """``shard0of3``: what a shard adds to the default file name."""
        return f"shard{self.index}of{self.count}"

    def take(self, cells: Sequence[T]) -> list[T]:
        """Cells ``K, K+N, K+2N, ...`` of the ordered grid."""
        return list(cells[self.index::self.count])


def parse_shard(text: str) -> Shard:
    """``"1/3"`` -> ``Shard(1, 3)``; a ValueError that says what is expected otherwise."""
    usage = f"--shard takes K/N with 0 <= K < N (K counts from 0, as SLURM's --array=0-(N-1)), got {text!r}"
    parts = text.strip().split("/")
    if len(parts) != 2:
        raise ValueError(usage)
    try:
        index, count = (int(part) for part in parts)
    except ValueError:
        raise ValueError(usage) from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(usage)
    return Shard(index, count)
