"""The anytime order of a sweep's cells: wherever a time limit cuts it, the widest picture is measured.

A *series* is every cell that shares all axes but the audio length (one mixer, kernel, dtype,
batch, mode and options). Each series orders its own lengths by bisection:

1. the shortest length (this cell also pays the series' first call: compilation, autotuning),
2. the longest length,
3. then, level by level, the middle of every gap between lengths already taken. Lengths are
   bisected by their index in the sorted list; a gap whose middle falls between two indices takes
   the one nearer the end of the grid it lies on (the lower index in the shorter half, the higher
   in the longer half, the lower at the exact centre), and gaps are taken shortest first.

For the paper preset (10, 25, 50, 100, 200, 300, 400 s) that is 10, 400, 100, 25, 300, 50, 200.

Across series, cells go in rounds: round r holds the r-th length of every series, series in the
order the grid lists them (``Sweep.cases``). So round 1 gives every mixer its first call at its
shortest length, round 2 every mixer's longest length, then the middles follow.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.cases import Case


def bisection_indices(count: int) -> list[int]:
    """Indices ``0 .. count-1`` in bisection order: ends first, then the middle of each gap, level by level."""
    if count <= 0:
        return []
    if count == 1:
        return [0]
    order = [0, count - 1]
    gaps = [(0, count - 1)]
    while gaps:
        next_gaps = []
        for low, high in gaps:
            if high - low < 2:
                continue
            middle = _middle(low, high, count)
            order.append(middle)
            next_gaps += [(low, middle), (middle, high)]
        gaps = next_gaps
    return order


def _middle(low: int, high: int, count: int) -> int:
    """The middle index of a gap; a half index goes towards the grid's nearer end (down at the centre)."""
    twice = low + high
    if twice % 2 == 0:
        return twice // 2
    upper_half = twice > count - 1  # the gap's middle lies above the grid's centre index (count - 1) / 2
    return twice // 2 + (1 if upper_half else 0)


def series_key(case: Case) -> tuple:
    """Every axis of a cell but its length: the cells that draw one curve."""
    return tuple(value for index, value in enumerate(case.key) if index != _SECONDS_INDEX)


_SECONDS_INDEX = 2
"""Position of ``seconds`` in ``Case.key`` (mixer, kernel, seconds, ...)."""


def anytime_order(cases: Sequence[Case]) -> list[Case]:
    """``cases`` reordered in rounds of every series' bisection order (module docstring)."""
    series: dict[tuple, list[Case]] = {}
    for case in cases:
        series.setdefault(series_key(case), []).append(case)
    ranked = []
    for cells in series.values():
        by_length = sorted(cells, key=lambda case: case.seconds)
        ranked.append([by_length[index] for index in bisection_indices(len(by_length))])
    rounds = max((len(cells) for cells in ranked), default=0)
    return [cells[r] for r in range(rounds) for cells in ranked if r < len(cells)]
