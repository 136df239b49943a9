"""Measure one cell in the current process: build the mixer, warm up, time, then probe memory.

Order matters: warm-up (and any autotuning or compilation) happens inside ``time_call`` before
the timed repetitions, and the memory probe runs after timing, so neither sees one-off costs.
"""

from __future__ import annotations

import time

import torch

import mixers
from bench.cases import DTYPES, Case
from bench.memory import peak_memory, tensor_bytes
from bench.results import Row
from bench.timing import time_call


def measure_cell(case: Case, min_reps: int = 10, budget_s: float = 1.0) -> Row:
    """Time and probe one cell; failures become rows (``oom`` or ``error``), never exceptions."""
    started = time.monotonic()
    try:
        row = _measure(case, min_reps, budget_s)
    except Exception as error:  # noqa: BLE001 - every failure of a cell must become a row
        row = Row.for_case(case, classify_failure(error), message=one_line(error))
    finally:
        _release(case.device)
    row.elapsed_s = time.monotonic() - started
    return row


def _measure(case: Case, min_reps: int, budget_s: float) -> Row:
    device, dtype = torch.device(case.device), DTYPES[case.dtype]
    module = mixers.build(case.mixer, case.hidden, case.heads, kernel=case.kernel, device=device)
    module = module.to(device=device, dtype=dtype).eval()
    x = torch.randn(case.batch, case.frames, case.hidden, device=device, dtype=dtype)
    predicted = mixers.cost(case.mixer, case.frames, case.hidden, case.heads, case.batch,
                            x.element_size(), case.kernel)

    def call():
        return module(x)

    with torch.inference_mode():
        timing = time_call(call, device, budget_s=budget_s, min_reps=min_reps)
        memory = peak_memory(call, device, baseline_bytes=tensor_bytes(module, x))
    return Row.for_case(
        case, "ok",
        median_ms=timing.median_ms, p20_ms=timing.p20_ms, p80_ms=timing.p80_ms, min_ms=timing.min_ms,
        n=timing.n, warmup=timing.warmup, warmup_ms=timing.warmup_ms,
        peak_bytes=memory.total_bytes, peak_above_bytes=memory.above_bytes, memory_method=memory.method,
        predicted_activation_bytes=predicted.activation_bytes, predicted_flops=predicted.flops,
        predicted_state_bytes=predicted.state_bytes, weight_bytes=predicted.weight_bytes,
    )


def classify_failure(error: BaseException) -> str:
    """``oom`` for any allocator failure (CUDA or CPU), ``error`` for everything else."""
    if isinstance(error, MemoryError | torch.cuda.OutOfMemoryError):
        return "oom"
    text = str(error)
    if "out of memory" in text.lower() or "can't allocate memory" in text or "DefaultCPUAllocator" in text:
        return "oom"
    return "error"


def one_line(error: BaseException) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first}"[:500]


def _release(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
