"""Sequence mixers: every one maps ``[batch, length, hidden]`` to ``[batch, length, hidden]``.

The registry is a plain dict from a mixer's name to the module that defines it. Modules are
imported on first use, so ``import mixers`` stays cheap (fla pulls in transformers).

Layout: at the top, one module per mechanism (layer, PyTorch twin, kernels, cost model), this registry,
``cost`` (the cost record) and ``bidirectional`` (the two-direction wrapper). ``mixers.cores`` holds the
chunked algorithms the twins share (chunkwise GLA, the delta rule, LightNet's additive form, blockwise
forgetting attention, ...), one per file; ``mixers.stream`` the recurrent one-frame-at-a-time forms.

Each mixer module defines:

- ``KERNELS``: the kernels it offers, e.g. ``("fla", "torch")`` or ``("sdpa", "naive")``;
  the first is the default when ``auto`` has no better choice. ``("fla",)`` alone marks a mixer
  without a PyTorch twin yet: ``auto`` refuses it off CUDA and ``names()`` leaves it out there.
- ``build(kernel, hidden_size, num_heads, **options) -> nn.Module``.
- ``cost(length, hidden_size, num_heads, batch, dtype_bytes, kernel) -> mixers.cost.Cost``.
- optionally ``auto_kernel(device, hidden_size, num_heads, dtype_bytes) -> str``: what ``auto`` runs
  on a CUDA device where fla's kernel may not fit it (FoX: ``flex`` where fla's tiles exceed the
  device's shared memory), decided from the device's properties before anything runs.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import torch
from torch import nn

from mixers.cost import Cost

REGISTRY: dict[str, str] = {
    # The paper's order (softmax attention, then the five efficient mixers), then ResLSTM.
    "sa": "mixers.softmax",
    "retnet": "mixers.retnet",
    "lightnet": "mixers.lightnet",
    "gsa": "mixers.gsa",
    "fox": "mixers.fox",
    "kda": "mixers.kda",
    "reslstm": "mixers.reslstm",
    # More mixers from fla, beyond the paper.
    "gla": "mixers.gla",
    "deltanet": "mixers.deltanet",
    "gated_deltanet": "mixers.gated_deltanet",
    "hgrn2": "mixers.hgrn2",
    "mamba2": "mixers.mamba2",
    "rwkv7": "mixers.rwkv7",  # fla's kernel only (no PyTorch twin yet): see names()
}

AUTO = "auto"


def names(include_fla_only: bool | None = None) -> list[str]:
    """Registered mixer names, in registry order.

    A mixer registered for fla's kernel only (no PyTorch twin yet) runs on CUDA alone: it is listed
    when ``include_fla_only`` is True, or when it is None and CUDA is available. So CPU sweeps and
    tests that iterate over ``names()`` leave it out; ``REGISTRY`` holds every name.
    """
    if include_fla_only is None:
        include_fla_only = torch.cuda.is_available()
    return [name for name in REGISTRY if include_fla_only or not fla_only(name)]


def fla_only(name: str) -> bool:
    """Whether mixer ``name`` has fla's kernel and nothing else (no PyTorch twin yet)."""
    return kernels(name) == ("fla",)


def _module(name: str) -> ModuleType:
    if name not in REGISTRY:
        raise ValueError(f"unknown mixer {name!r}; known mixers: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name])


def kernels(name: str) -> tuple[str, ...]:
    """The kernels mixer ``name`` offers, default first."""
    return tuple(_module(name).KERNELS)


def resolve_kernel(name: str, kernel: str = AUTO, device: str | torch.device | None = None,
                   hidden_size: int = 1024, num_heads: int = 4, dtype_bytes: int = 4) -> str:
    """Turn ``auto`` into a concrete kernel for ``device``; reject kernels the mixer lacks.

    On CUDA ``auto`` is ``fla`` unless the mixer's ``auto_kernel`` says fla's kernel cannot run this
    shape and dtype there; the default sizes are the paper's (and fp32, the largest tiles)."""
    offered = kernels(name)
    if kernel == AUTO:
        on_cuda = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
        if "fla" in offered and on_cuda:
            chooser = getattr(_module(name), "auto_kernel", None)
            if chooser is None:
                return "fla"
            return chooser(torch.device(device if device is not None else "cuda"), hidden_size, num_heads,
                           dtype_bytes)
        if offered == ("fla",):
            raise ValueError(
                f"mixer {name!r} has only fla's kernel (no torch twin yet), which needs CUDA; on CPU ask for "
                f"'{name}:fla' explicitly (it runs only under Triton's interpreter, TRITON_INTERPRET=1)"
            )
        return "torch" if "torch" in offered else offered[0]
    if kernel not in offered:
        raise ValueError(
            f"mixer {name!r} has no kernel {kernel!r}; its kernels: {', '.join(offered)} (or {AUTO})"
        )
    return kernel


def parse_spec(spec: str) -> tuple[str, str]:
    """``"sa:naive"`` -> ``("sa", "naive")``; ``"kda"`` -> ``("kda", "auto")``. Validates both parts."""
    name, _, kernel = spec.strip().partition(":")
    kernel = kernel or AUTO
    _module(name)
    if kernel != AUTO:
        resolve_kernel(name, kernel)
    return name, kernel


def build(
    name: str,
    hidden_size: int = 1024,
    num_heads: int = 4,
    kernel: str = AUTO,
    device: str | torch.device | None = None,
    **options,
) -> nn.Module:
    """Build mixer ``name`` with ``kernel`` (``auto`` resolves for ``device``)."""
    if hidden_size <= 0 or num_heads <= 0 or hidden_size % num_heads:
        raise ValueError(
            f"hidden_size must be a positive multiple of num_heads; got {hidden_size} and {num_heads}"
        )
    concrete = resolve_kernel(name, kernel, device, hidden_size, num_heads)
    module = _module(name).build(concrete, hidden_size=hidden_size, num_heads=num_heads, **options)
    module.mixer_name, module.kernel = name, concrete
    return module


def cost(
    name: str,
    length: int,
    hidden_size: int = 1024,
    num_heads: int = 4,
    batch: int = 1,
    dtype_bytes: int = 4,
    kernel: str = AUTO,
    **options,
) -> Cost:
    """Analytical cost of one forward pass of mixer ``name``: see ``mixers.cost.Cost``.

    ``options`` are the mixer's own build options its cost depends on (e.g. SA's ``causal``)."""
    concrete = resolve_kernel(name, kernel, hidden_size=hidden_size, num_heads=num_heads, dtype_bytes=dtype_bytes)
    return _module(name).cost(
        length=length, hidden_size=hidden_size, num_heads=num_heads,
        batch=batch, dtype_bytes=dtype_bytes, kernel=concrete, **options,
    )


__all__ = ["AUTO", "Cost", "REGISTRY", "build", "cost", "fla_only", "kernels", "names", "parse_spec",
           "resolve_kernel"]
