"""Time a callable: warm up, then repeat until a time budget is spent, never fewer than ``min_reps``.

One interface, two clocks: ``perf_counter_ns`` around each call on CPU; CUDA events around each
call on GPU, with one synchronisation after the last repetition and, optionally, the L2 cache
flushed between repetitions (outside the timed region) so every call starts cold.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from bench.phase import FIRST_CALL, phase

MIN_REPS = 10


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p20_ms: float
    p80_ms: float
    min_ms: float
    n: int
    warmup: int
    """Calls made before timing started (compilation, autotuning and caches happen there)."""
    warmup_ms: float
    """Duration of the first warm-up call, reported apart: it holds any one-off compile cost."""

    @classmethod
    def from_samples(cls, samples_ms: list[float], warmup: int, warmup_ms: float) -> Timing:
        ordered = sorted(samples_ms)
        return cls(
            median_ms=statistics.median(ordered),
            p20_ms=_quantile(ordered, 0.2),
            p80_ms=_quantile(ordered, 0.8),
            min_ms=ordered[0],
            n=len(ordered),
            warmup=warmup,
            warmup_ms=warmup_ms,
        )


def _quantile(ordered: list[float], q: float) -> float:
    """Linear-interpolated quantile of sorted samples (numpy's default method)."""
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def time_call(
    fn: Callable[[], object],
    device: str | torch.device = "cpu",
    budget_s: float = 1.0,
    min_reps: int = MIN_REPS,
    max_reps: int = 10_000,
    flush_l2: bool = False,
) -> Timing:
    """Warm up ``fn``, then time ``max(min_reps, budget_s / call time)`` calls (capped at ``max_reps``)."""
    if min_reps < 1 or max_reps < min_reps:
        raise ValueError(f"need 1 <= min_reps <= max_reps, got min_reps={min_reps}, max_reps={max_reps}")
    if budget_s < 0:
        raise ValueError(f"budget_s must be >= 0, got {budget_s}")
    clock = CudaClock(torch.device(device), flush_l2) if torch.device(device).type == "cuda" else CpuClock()
    with phase(FIRST_CALL):  # the display shows it live: compilation and autotuning happen here
        warmup_ms = clock.measure(fn, 1)[0]
    warmup, estimate_ms = 1, warmup_ms
    # A second warm-up call gives a cleaner estimate when the first paid for compilation.
    if warmup_ms < budget_s * 1e3 / 4:
        estimate_ms = clock.measure(fn, 1)[0]
        warmup = 2
    reps = int(budget_s * 1e3 / max(estimate_ms, 1e-6))
    reps = max(min_reps, min(max_reps, reps))
    return Timing.from_samples(clock.measure(fn, reps), warmup=warmup, warmup_ms=warmup_ms)


class CpuClock:
    """Wall time of each call with the monotonic ``perf_counter_ns``."""

    def measure(self, fn: Callable[[], object], reps: int) -> list[float]:
        samples = []
        for _ in range(reps):
            start = time.perf_counter_ns()
            fn()
            samples.append((time.perf_counter_ns() - start) / 1e6)
        return samples


class CudaClock:
    """GPU time of each call between two CUDA events; one synchronisation after the last call."""

    def __init__(self, device: torch.device, flush_l2: bool = False):
        self.device = device
        self.flush_buffer = None
        if flush_l2:
            l2_bytes = getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0) or 64 * 2**20
            # Writing twice the L2 size evicts whatever the previous call left in it.
            self.flush_buffer = torch.empty(2 * l2_bytes, dtype=torch.uint8, device=device)

    def measure(self, fn: Callable[[], object], reps: int) -> list[float]:
        events = [
            (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)
        ]
        torch.cuda.synchronize(self.device)
        for start, end in events:
            if self.flush_buffer is not None:
                self.flush_buffer.zero_()
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(self.device)
        return [start.elapsed_time(end) for start, end in events]
