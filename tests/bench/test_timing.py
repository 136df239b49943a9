import time

import pytest
import torch

from bench.timing import Timing, time_call


def test_stats_of_known_samples():
    t = Timing.from_samples([5.0, 1.0, 4.0, 2.0, 3.0, 6.0, 7.0, 8.0, 9.0, 10.0], warmup=1, warmup_ms=0.0)
    assert (t.median_ms, t.min_ms, t.n) == (5.5, 1.0, 10)
    assert t.p20_ms == pytest.approx(2.8)  # numpy's linear interpolation: 1 + 0.2 * 9 -> 2.8
    assert t.p80_ms == pytest.approx(8.2)


def test_at_least_ten_reps_even_when_budget_is_spent_by_one_call():
    t = time_call(lambda: time.sleep(0.02), budget_s=0.01)
    assert t.n == 10
    assert t.median_ms >= 20


def test_fast_calls_fill_the_budget():
    t = time_call(lambda: None, budget_s=0.05)
    assert t.n > 100


def test_warmup_is_not_timed():
    calls = []

    def slow_first_call():
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.2)

    t = time_call(slow_first_call, budget_s=0.01)
    assert t.warmup_ms >= 200
    assert t.median_ms < 50
    assert len(calls) == t.warmup + t.n


@pytest.mark.parametrize("kwargs", [{"min_reps": 0}, {"budget_s": -1.0}, {"min_reps": 5, "max_reps": 4}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        time_call(lambda: None, **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA events need an NVIDIA GPU")
def test_cuda_events_time_a_kernel():
    x = torch.randn(4096, 4096, device="cuda")
    t = time_call(lambda: x @ x, device="cuda", budget_s=0.1, flush_l2=True)
    assert t.n >= 10 and 0 < t.min_ms <= t.median_ms
