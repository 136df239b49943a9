import pytest
import torch

import mixers
from bench.memory import peak_memory, tensor_bytes, timeline_peak


def test_known_allocation_is_reported_within_one_percent():
    size = 10_000_000 * 4
    peak = peak_memory(lambda: torch.empty(10_000_000).fill_(1.0), "cpu")
    assert peak.above_bytes == pytest.approx(size, rel=0.01)


def test_transient_tensors_count_toward_the_peak():
    # Two 8 MB temporaries alive together, then freed: the peak is 16 MB although the result is 4 B.
    def fn():
        a = torch.ones(2_000_000)
        b = torch.ones(2_000_000)
        return (a + 0).sum() + b.sum()

    peak = peak_memory(fn, "cpu")
    assert peak.above_bytes >= 3 * 8_000_000  # a, b and the a + 0 temporary


def test_baseline_is_added_to_total():
    peak = peak_memory(lambda: torch.empty(1000), "cpu", baseline_bytes=123)
    assert peak.total_bytes == peak.above_bytes + 123


@pytest.mark.parametrize("length", [512, 1999])
def test_naive_attention_holds_scores_and_probabilities(length):
    heads = 4
    module = mixers.build("sa", 256, heads, kernel="naive")
    x = torch.randn(1, length, 256)
    with torch.inference_mode():
        peak = peak_memory(lambda: module(x), "cpu")
    assert peak.above_bytes >= 2 * heads * length * length * 4


def test_timeline_walk_on_a_hand_made_timeline():
    class A:
        def __init__(self, name):
            self.name = name

    timeline = [(-1, A("PREEXISTING"), None, 1000), (1, A("CREATE"), None, 10), (2, A("CREATE"), None, 30),
                (3, A("DESTROY"), None, 10), (4, A("INCREMENT_VERSION"), None, 30), (5, A("CREATE"), None, 5)]
    assert timeline_peak(timeline) == 40


def test_tensor_bytes_counts_shared_storage_once():
    module = torch.nn.Linear(10, 10, bias=False)
    x = torch.zeros(5, 10)
    assert tensor_bytes(module, x, x[1:]) == 100 * 4 + 50 * 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="max_memory_allocated needs an NVIDIA GPU")
def test_cuda_peak_of_known_allocation():
    peak = peak_memory(lambda: torch.empty(10_000_000, device="cuda").fill_(1.0), "cuda")
    assert peak.above_bytes == pytest.approx(40_000_000, rel=0.01)
