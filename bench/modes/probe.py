"""The probes every mode shares: time a call, measure one call's peak memory, name SA's backend.

Order: timing first (warm-up, compilation and autotuning happen inside ``time_call`` before the
timed repetitions; the first call's time, compilation included, is ``warmup_ms``), then the energy
window of repeated calls (``bench.energy``; nulls without a readable counter), then one call
under the memory probe, then one call under the profiler for the SDPA backend. With CUDA graphs
the timed call is a graph replay, which neither the memory probe nor the profiler can see into:
both then probe ``plain``, the same call uncaptured (same kernels, same allocations).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bench import energy
from bench.memory import peak_memory
from bench.sdpa_backend import sdpa_backend
from bench.timing import time_call


def probe(call: Callable[[], object], device: torch.device, min_reps: int, budget_s: float,
          baseline_bytes: int | Callable[[], int], sdpa: bool, plain: Callable[[], object] | None = None,
          prepare: Callable[[], None] = lambda: None) -> dict:
    """Row fields for ``call``: latency stats, peak memory, and the SDPA backend when ``sdpa``.

    ``baseline_bytes`` (what lives before a call on CPU) may be a function, read after timing, for
    state that the first calls create (AdamW's moments); ``prepare`` runs just before the memory
    probe (training drops gradients there, so the probed call allocates them).
    """
    timing = time_call(call, device, budget_s=budget_s, min_reps=min_reps)
    joules = energy.row_fields(call, device, timing.median_ms)
    untimed = plain or call
    baseline = baseline_bytes() if callable(baseline_bytes) else baseline_bytes
    prepare()
    memory = peak_memory(untimed, device, baseline_bytes=baseline)
    return dict(
        median_ms=timing.median_ms, p20_ms=timing.p20_ms, p80_ms=timing.p80_ms, min_ms=timing.min_ms,
        n=timing.n, warmup=timing.warmup, warmup_ms=timing.warmup_ms,
        peak_bytes=memory.total_bytes, peak_above_bytes=memory.above_bytes, memory_method=memory.method,
        sdpa_backend=sdpa_backend(untimed, device) if sdpa else None, **joules,
    )

def is_sdpa(case) -> bool:
    """Cells whose row records ``sdpa_backend``: softmax attention on its ``sdpa`` kernel."""
    return case.mixer == "sa" and case.kernel == "sdpa"
