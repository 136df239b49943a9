"""Measure one cell in the current process: build the mixer, then measure it in the case's mode.

Order matters (``bench.modes.probe``): warm-up (and any autotuning or compilation) happens inside
``time_call`` before the timed repetitions, and the memory probe runs after timing, so neither
sees one-off costs.
"""

from __future__ import annotations

import time

import torch

from bench import modes, precision
from bench.cases import Case
from bench.modes.cell import build_module, predict
from bench.results import Row
from mixers.cost import Cost


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
    return precision.stamp(row, case.device)  # what was in force where the cell ran


def _measure(case: Case, min_reps: int, budget_s: float) -> Row:
    """Build the cell's mixer, measure it in its mode (``bench.modes``), store the prediction beside."""
    module = build_module(case)
    fields = modes.run(case, module, min_reps, budget_s)
    return Row.for_case(case, "ok", **fields, **prediction_fields(predict(case)))


def prediction_fields(predicted: Cost) -> dict:
    return dict(predicted_activation_bytes=predicted.activation_bytes, predicted_flops=predicted.flops,
                predicted_state_bytes=predicted.state_bytes, weight_bytes=predicted.weight_bytes,
                predicted_train_bytes=predicted.train_bytes)


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
