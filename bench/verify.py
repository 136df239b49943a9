"""Numerical parity between a mixer's kernels, with one set of weights loaded into both.

Pairs checked for each mixer (the first kernel is the one under test, the second its reference):

- ``naive`` vs ``sdpa`` for softmax attention;
- ``torch`` vs ``fla`` wherever fla's kernels can run: on CUDA, or on CPU under Triton's
  interpreter (``bench.interpreter``);
- ``torch`` vs ``reference`` where the mixer offers fla's pure-PyTorch reference op as a kernel;
- ``flex`` vs ``reference`` likewise (FoX's FlexAttention kernel). A kernel that cannot be trained
  on the device (FlexAttention on CPU) is checked on its output alone, and its row says so.

A mixer with an ``fla`` kernel and no ``torch`` twin gets a row saying so ("fla only (no torch
twin)"). When fla's own kernel refuses a case (fla 0.6's DeltaNet chunk kernel asserts bf16/fp16,
so fp32 above 64 tokens fails), the row says what fla raised and counts as neither pass nor fail.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

import mixers
from bench.cases import DTYPES

# fp32 at unit-scale inputs; the error is also judged against the reference output's scale,
# because some layers (KDA) start with outputs far below 1.
TOLERANCE = {"fp32": 1e-4, "bf16": 2e-2, "fp16": 5e-3}


@dataclass(frozen=True)
class Check:
    mixer: str
    kernel: str
    reference: str
    length: int
    max_abs: float | None
    scale: float | None
    grad_max_abs: float | None
    tolerance: float
    passed: bool | None
    note: str = ""


def fla_runnable(device: str) -> bool:
    """fla's Triton kernels run on CUDA, or on CPU when this process interprets Triton."""
    if torch.device(device).type == "cuda":
        return torch.cuda.is_available()
    return os.environ.get("TRITON_INTERPRET") == "1"


def kernel_pairs(name: str, device: str) -> list[tuple[str, str]]:
    offered = mixers.kernels(name)
    pairs = []
    if {"naive", "sdpa"} <= set(offered):
        pairs.append(("naive", "sdpa"))
    if "torch" in offered and "fla" in offered and fla_runnable(device):
        pairs.append(("torch", "fla"))
    if "torch" in offered and "reference" in offered:
        pairs.append(("torch", "reference"))
    if "flex" in offered and "reference" in offered:
        pairs.append(("flex", "reference"))
    return pairs


def check_pair(name: str, kernel: str, reference: str, length: int, hidden: int, heads: int,
               device: str = "cpu", dtype: str = "fp32", seed: int = 0) -> Check:
    """Forward output and input gradient of ``kernel`` against ``reference``, same weights and input."""
    torch.manual_seed(seed)
    tested = mixers.build(name, hidden, heads, kernel=kernel, device=device)
    baseline = mixers.build(name, hidden, heads, kernel=reference, device=device)
    baseline.load_state_dict(tested.state_dict(), strict=True)
    tested = tested.to(device=device, dtype=DTYPES[dtype])
    baseline = baseline.to(device=device, dtype=DTYPES[dtype])
    x = torch.randn(2, length, hidden, device=device, dtype=DTYPES[dtype])
    trains = getattr(tested, "backward_available", lambda device: True)(device)
    run = _forward_backward if trains else _forward
    y_tested, grad_tested = run(tested, x)
    try:
        y_base, grad_base = run(baseline, x)
    except Exception as error:  # only fla's own refusals are reported, never the tested kernel's errors
        if reference != "fla":
            raise
        first_line = (str(error).splitlines() or [""])[0]
        note = f"fla refused: {type(error).__name__}: {first_line}"
        return Check(name, kernel, reference, length, None, None, None, TOLERANCE[dtype], None, note)
    max_abs = (y_tested.float() - y_base.float()).abs().max().item()
    scale = y_base.float().abs().max().item()
    tolerance = TOLERANCE[dtype]
    passed = max_abs <= tolerance * max(1.0, scale)
    if not trains:
        return Check(name, kernel, reference, length, max_abs, scale, None, tolerance, passed,
                     f"output only: {kernel} has no backward on {torch.device(device).type}")
    grad_max_abs = (grad_tested.float() - grad_base.float()).abs().max().item()
    grad_scale = grad_base.float().abs().max().item()
    passed = passed and grad_max_abs <= tolerance * max(1.0, grad_scale)
    return Check(name, kernel, reference, length, max_abs, scale, grad_max_abs, tolerance, passed)


def _forward(module: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, None]:
    with torch.no_grad():
        return module(x), None


def _forward_backward(module: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    y = module(x)
    # A fixed random cotangent, so every output element contributes to the gradient.
    cotangent = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(y)
    (y * cotangent).sum().backward()
    return y.detach(), x.grad.detach()


def verify(names: list[str], lengths: list[int], hidden: int, heads: int, device: str = "cpu",
           dtype: str = "fp32") -> list[Check]:
    checks = []
    for name in names:
        pairs = kernel_pairs(name, device)
        if not pairs:
            note = ("fla only (no torch twin)" if mixers.fla_only(name)
                    else "no second kernel runnable here (fla needs CUDA or --interpret)")
            checks.append(Check(name, "-", "-", 0, None, None, None, TOLERANCE[dtype], None, note))
        for kernel, reference in pairs:
            for length in lengths:
                checks.append(check_pair(name, kernel, reference, length, hidden, heads, device, dtype))
    return checks
