"""Count what a GPU allocator would see of an fla layer's forward, on CPU, in seconds.

fla's layers allocate every tensor in Python (projections, ``torch.empty`` outputs, chunk states)
and hand them to Triton kernels, which allocate nothing. So with each Triton launch made a no-op
(``KernelInterface.__getitem__``, through which ``kernel[grid](...)`` launches, including
autotuned and heuristic kernels), the layer runs its wrappers on CPU at full size without
computing, and a ``TorchDispatchMode`` sees every new storage and, through a weak-reference
finalizer on the storage, its release. The peak of live bytes is what ``max_memory_allocated``
reports above the baseline. Outputs are garbage; only their sizes and lifetimes are real.

Against the H200 run this counter reads RetNet, KDA and LightNet within 0.3-2.2% of the measured
peaks (fp32, 100-400 s), which is why it stands in for a GPU where none has run a mixer yet.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class StorageCounter(TorchDispatchMode):
    """Peak bytes of storages created inside the mode and still alive (views and in-place
    results share their input's storage and are not counted again)."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = self.peak = 0

    def _released(self, pointer: int) -> None:
        self.current -= self.live.pop(pointer)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {a.untyped_storage().data_ptr() for a in tree_flatten((args, kwargs))[0]
                  if isinstance(a, torch.Tensor)}
        for tensor in tree_flatten(out)[0]:
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            pointer, nbytes = storage.data_ptr(), storage.nbytes()
            if nbytes == 0 or pointer in inputs or pointer in self.live:
                continue
            self.live[pointer] = nbytes
            self.current += nbytes
            self.peak = max(self.peak, self.current)
            weakref.finalize(storage, self._released, pointer)
        return out


@contextlib.contextmanager
def triton_launches_skipped() -> Iterator[None]:
    """Make every ``kernel[grid](...)`` launch return without running (and without compiling)."""
    from triton.runtime.jit import KernelInterface

    saved = KernelInterface.__getitem__
    KernelInterface.__getitem__ = lambda self, grid: (lambda *args, **kwargs: None)
    try:
        yield
    finally:
        KernelInterface.__getitem__ = saved


def forward_peak(call: Callable[[], object]) -> int:
    """Peak bytes above what exists before ``call()``, with Triton launches skipped, under
    inference mode (the sweep's forward procedure); the result is dropped inside the count. One
    uncounted call first, as the sweep warms up before it measures (lazy caches land in the baseline)."""
    with triton_launches_skipped(), torch.inference_mode():
        call()
        counter = StorageCounter()
        with counter:
            result = call()
            del result
    return counter.peak
