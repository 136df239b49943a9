"""Which kernel ``scaled_dot_product_attention`` really ran, read from a profiler trace of one call.

PyTorch's SDPA dispatches at run time to one of several fused kernels (or the math fallback,
plain matmuls and softmax), depending on device, dtype, shapes, masks and the
``torch.nn.attention.sdpa_kernel`` context. Each backend is its own ATen operator, so the names of
the operators recorded by ``torch.profiler`` say which one ran:

    aten::_scaled_dot_product_flash_attention_for_cpu   flash (the CPU flash-attention kernel)
    aten::_scaled_dot_product_flash_attention           flash (CUDA)
    aten::_scaled_dot_product_efficient_attention       efficient (memory-efficient, xFormers')
    aten::_scaled_dot_product_cudnn_attention           cudnn
    aten::_scaled_dot_product_attention_math            math (the unfused fallback)

Their ``_backward`` operators are not matched: the forward choice names the backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

OPERATORS = {
    "aten::_scaled_dot_product_flash_attention_for_cpu": "flash",
    "aten::_scaled_dot_product_flash_attention": "flash",
    "aten::_scaled_dot_product_efficient_attention": "efficient",
    "aten::_scaled_dot_product_cudnn_attention": "cudnn",
    "aten::_scaled_dot_product_fused_attention_overrideable": "overrideable",
    "aten::_scaled_dot_product_attention_math": "math",
    "aten::_scaled_dot_product_attention_math_for_mps": "math",
}


def backend_of(operator_names: Iterable[str]) -> str | None:
    """The backend(s) named by a trace's operators: ``"flash"``, ``"math"``, or ``"flash+math"`` when
    several calls chose differently; None when no SDPA backend ran."""
    found = sorted({OPERATORS[name] for name in operator_names if name in OPERATORS})
    return "+".join(found) if found else None


def sdpa_backend(fn: Callable[[], object], device: str | torch.device = "cpu") -> str | None:
    """Run ``fn`` once under the profiler and return the SDPA backend(s) it used (see ``backend_of``)."""
    from torch.profiler import ProfilerActivity, profile

    from bench.memory import _without_kineto_chatter

    activities = [ProfilerActivity.CPU]
    if torch.device(device).type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with _without_kineto_chatter(), profile(activities=activities) as prof:
        result = fn()
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)
    del result
    return backend_of(event.name for event in prof.events())
