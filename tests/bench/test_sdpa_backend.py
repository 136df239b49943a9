"""The SDPA backend recorded in rows: what the profiler shows, and what ``sdpa_kernel`` forces."""

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile

import mixers
from bench.cases import Case
from bench.measure import measure_cell
from bench.sdpa_backend import backend_of, sdpa_backend


def _case(kernel="sdpa", mode="forward"):
    return Case("sa", kernel, 2.0, "fp32", 1, 64, 2, "cpu", mode)


def _operators(fn) -> set[str]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {event.name for event in prof.events()}


def test_row_records_the_kernel_the_profiler_shows():
    row = measure_cell(_case(), min_reps=2, budget_s=0.0)
    module = mixers.build("sa", 64, 2, kernel="sdpa")
    x = torch.randn(1, row.frames, 64)
    with torch.inference_mode():
        seen = _operators(lambda: module(x))
    # On CPU, fp32 without a mask, PyTorch 2.13 picks its CPU flash-attention kernel.
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in seen
    assert row.sdpa_backend == "flash"
    assert measure_cell(_case(mode="train"), min_reps=1, budget_s=0.0).sdpa_backend == "flash"


def test_forcing_the_math_backend_changes_the_record():
    with sdpa_kernel([SDPBackend.MATH]):
        row = measure_cell(_case(), min_reps=2, budget_s=0.0)
    assert row.status == "ok" and row.sdpa_backend == "math"
    q = torch.randn(1, 2, 10, 8)
    with sdpa_kernel([SDPBackend.MATH]):
        assert "aten::_scaled_dot_product_attention_math" in _operators(
            lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q))


def test_no_backend_outside_sdpa():
    assert measure_cell(_case("naive"), min_reps=1, budget_s=0.0).sdpa_backend is None
    assert sdpa_backend(lambda: torch.ones(3) * 2) is None


def test_backend_names():
    assert backend_of(["aten::_scaled_dot_product_efficient_attention", "aten::mm"]) == "efficient"
    assert backend_of(["aten::_scaled_dot_product_cudnn_attention"]) == "cudnn"
    assert backend_of(["aten::_scaled_dot_product_flash_attention",
                       "aten::_scaled_dot_product_attention_math"]) == "flash+math"
    assert backend_of(["aten::_scaled_dot_product_flash_attention_for_cpu_backward"]) is None
