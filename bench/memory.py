"""Peak memory of one call: the same two figures on every device.

- ``total_bytes``: the highest amount of tensor memory allocated at any moment during the call.
- ``above_bytes``: that peak minus what was allocated just before the call (weights and input),
  i.e. the call's own activations and scratch.

CUDA: ``reset_peak_memory_stats`` then ``max_memory_allocated``.
CPU: an exact tensor-level peak. The profiler records every allocation and free made inside the
call; walking its memory timeline (``_memory_profile().timeline``) and adding CREATE sizes and
subtracting DESTROY sizes gives the peak of live tensor bytes. That timeline is a private PyTorch
API, so it is used in one function only (``_cpu_timeline_peak``) and pinned by tests; the bare
``[memory]`` profiler events are not enough (they miss frees made inside operators).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MemoryPeak:
    total_bytes: int
    above_bytes: int
    method: str
    """How the peak was measured: ``cuda-allocator`` or ``cpu-profiler-timeline``."""


def peak_memory(fn: Callable[[], object], device: str | torch.device, baseline_bytes: int = 0) -> MemoryPeak:
    """Measure the peak memory of one call of ``fn`` on ``device``.

    ``baseline_bytes`` says what lives before the call on CPU (weights and inputs), where no
    allocator keeps a running total; on CUDA it is read from the allocator and this is ignored.
    """
    kind = torch.device(device).type
    if kind == "cuda":
        return _cuda_peak(fn, torch.device(device))
    if kind == "cpu":
        above = _cpu_timeline_peak(fn)
        return MemoryPeak(total_bytes=baseline_bytes + above, above_bytes=above, method="cpu-profiler-timeline")
    raise ValueError(f"peak memory is measured on 'cpu' or 'cuda' devices, got {device!r}")


def _cuda_peak(fn: Callable[[], object], device: torch.device) -> MemoryPeak:
    torch.cuda.synchronize(device)
    gc.collect()
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    result = fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    del result
    return MemoryPeak(total_bytes=peak, above_bytes=peak - before, method="cuda-allocator")


def _cpu_timeline_peak(fn: Callable[[], object]) -> int:
    """Peak of live bytes allocated during ``fn()``, above what existed before it."""
    from torch.profiler import ProfilerActivity, profile

    gc.collect()
    with _without_kineto_chatter(), profile(
        activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True
    ) as prof:
        result = fn()
        del result  # freeing the output inside the profile keeps it counted once, at creation
    return timeline_peak(prof._memory_profile().timeline)


@contextlib.contextmanager
def _without_kineto_chatter() -> Iterator[None]:
    """Drop the profiler's C++ ``USDT: profiler_start/stop`` lines from stderr; keep everything else."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not line.startswith("USDT:"):
                    sys.stderr.write(line)


def timeline_peak(timeline) -> int:
    """Running maximum of CREATE minus DESTROY sizes; PREEXISTING tensors are the baseline."""
    live = peak = 0
    for _time, action, _key, size in timeline:
        name = getattr(action, "name", str(action))
        if name == "CREATE":
            live += size
        elif name == "DESTROY":
            live -= size
        peak = max(peak, live)
    return peak


def tensor_bytes(*objects: object) -> int:
    """Bytes of the distinct storages held by tensors and modules (weights, buffers, inputs)."""
    seen: dict[int, int] = {}
    for obj in objects:
        tensors = list(obj.parameters()) + list(obj.buffers()) if isinstance(obj, torch.nn.Module) else [obj]
        for t in tensors:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())
