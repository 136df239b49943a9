"""The harness's own cost: timing a no-op must report almost nothing (issue target: < 20 µs on CPU).

Run with ``pytest tests/perf --benchmark-enable`` to see pytest-benchmark's table of the whole
``time_call`` invocation; the figure gated here is the median the harness itself reports.
"""

import pytest

from bench.timing import time_call

pytestmark = pytest.mark.perf


def test_noop_median_under_20_microseconds(benchmark):
    timing = benchmark.pedantic(time_call, args=(lambda: None,), kwargs={"budget_s": 0.05}, rounds=3)
    benchmark.extra_info["noop_median_us"] = timing.median_ms * 1e3
    assert timing.median_ms * 1e3 < 20
