"""Launch-overhead options: ``torch.compile`` around the mixer, and CUDA-graph capture of a call.

- ``compiled``: ``torch.compile`` with its defaults (inductor; on CPU it generates C++/OpenMP,
  on CUDA Triton kernels). Compilation happens on the first call, i.e. inside the timing's first
  warm-up call, so its cost lands in ``warmup_ms`` and not in the timed repetitions.
- ``captured``: PyTorch's recipe for whole-call capture (``torch.cuda.graphs``): warm-up calls
  on a side stream (lazy initialisation, cuBLAS workspaces and autotuning must not happen during
  capture), one capture with ``torch.cuda.graph``, then each timed call is ``graph.replay()``.
  The call must read fixed tensors (static input) and its output lives in the graph's pool.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bench.phase import FIRST_CALL, phase

WARMUP_CALLS = 3


def compiled(target):
    """``torch.compile(target)`` (a module or a function), failing with one clear line."""
    try:
        return torch.compile(target)
    except RuntimeError as error:  # e.g. no C++ compiler for inductor on CPU
        raise RuntimeError(f"torch.compile failed: {error}") from error


def require_cuda(device: torch.device) -> None:
    if device.type != "cuda":
        raise ValueError(f"--cuda-graphs captures CUDA graphs and needs a CUDA device, got {device}")


def captured(fn: Callable[[], object], device: torch.device,
             before_capture: Callable[[], None] = lambda: None) -> Callable[[], object]:
    """``fn`` captured in a CUDA graph after warm-up on a side stream; returns the replaying call.

    ``before_capture`` runs between the warm-up and the capture (training drops gradients there,
    so the graph allocates them from its own pool and later replays overwrite them).
    """
    require_cuda(device)
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side), phase(FIRST_CALL):
        for _ in range(WARMUP_CALLS):
            fn()
    torch.cuda.current_stream(device).wait_stream(side)
    before_capture()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_output = fn()

    def replay() -> object:
        graph.replay()
        return static_output

    replay.graph = graph  # kept alive with the call
    return replay
