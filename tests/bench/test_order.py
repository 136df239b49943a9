import pytest

from bench.cases import Sweep
from bench.order import anytime_order, bisection_indices, series_key

PAPER = (10, 25, 50, 100, 200, 300, 400)


def test_paper_lengths_in_the_issues_bisection_order():
    assert [PAPER[i] for i in bisection_indices(7)] == [10, 400, 100, 25, 300, 50, 200]


@pytest.mark.parametrize("count", range(0, 14))
def test_every_index_once_ends_first(count):
    order = bisection_indices(count)
    assert sorted(order) == list(range(count))
    if count >= 2:
        assert order[:2] == [0, count - 1]


def test_each_level_halves_the_gaps_left():
    # 9 lengths: ends, the centre, the quarter points, then the rest.
    assert bisection_indices(9) == [0, 8, 4, 2, 6, 1, 3, 5, 7]


def test_rounds_across_mixers_shortest_then_longest_then_middles():
    sweep = Sweep(seconds=(10, 25, 50, 100, 200), mixers=("sa:sdpa", "lightnet", "kda"), hidden=32, heads=2)
    grid = sweep.cases()
    order = anytime_order(grid)
    assert sorted(c.key for c in order) == sorted(c.key for c in grid)
    spelled = [(c.mixer, c.seconds) for c in order]
    mixers = ["sa", "lightnet", "kda"]
    assert spelled[:3] == [(m, 10) for m in mixers]
    assert spelled[3:6] == [(m, 200) for m in mixers]
    assert spelled[6:9] == [(m, 50) for m in mixers]
    assert [s for m, s in spelled if m == "kda"] == [10, 200, 50, 25, 100]


def test_series_are_every_axis_but_length():
    sweep = Sweep(seconds=(10, 20), mixers=("sa:sdpa",), dtypes=("fp32", "bf16"), hidden=32, heads=2)
    order = anytime_order(sweep.cases())
    assert [(c.dtype, c.seconds) for c in order] == [("fp32", 10), ("bf16", 10), ("fp32", 20), ("bf16", 20)]
    assert len({series_key(c) for c in order}) == 2
