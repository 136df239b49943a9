"""Numerical parity between a mixer's kernels, with one set of weights loaded into both.

Pairs checked for each mixer (the first kernel is the one under test, the second its reference):

- ``naive`` vs ``sdpa`` for softmax attention;
- ``torch`` vs ``fla`` wherever fla's kernels can run: on CUDA, or on CPU under Triton's
  interpreter (``bench.interpreter``);
- ``torch`` vs ``reference`` where the mixer offers fla's pure-PyTorch reference op as a kernel;
- ``flex`` vs ``reference`` likewise (FoX's FlexAttention kernel). A kernel that cannot be trained
  on the device (FlexAttention on CPU) is checked on its output alone, and its row says so.

A mixer with an ``fla`` kernel and no ``torch`` twin gets a row saying so ("fla only (no torch
twin)"), as do a mixer with one kernel (``reslstm``) and one whose second kernel cannot run here.
When fla's own kernel refuses a case (fla 0.6's DeltaNet chunk kernel asserts bf16/fp16, so fp32
above 64 tokens fails), the row says what fla raised and counts as neither pass nor fail.

``plan`` lists the checks first, so a run cut by a time limit can say what it left out; ``run``
yields each check as it finishes. fp32 pairs are judged at the precision in force for both kernels
(``bench.precision``): IEEE at ``TOLERANCE``, TF32 (or a mix) at ``TF32_TOLERANCE``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

import mixers
from bench import precision
from bench.cases import DTYPES

# fp32 at unit-scale inputs; the error is also judged against the reference output's scale,
# because some layers (KDA) start with outputs far below 1. bf16 and fp16: ten unit roundoffs of
# their mantissas (8 and 10 bits: 2**-9 and 2**-11).
TOLERANCE = {"fp32": 1e-4, "bf16": 2e-2, "fp16": 5e-3}
TF32_TOLERANCE = 5e-3
"""fp32 pairs where a kernel multiplies in TF32. TF32 keeps fp16's 10-bit mantissa: each operand is
rounded to within 2**-11 = 4.9e-4 relative, a product to about twice that, and the sums stay fp32.
Errors of K products with random signs grow as sqrt(K), like the sum itself, so each product stage
adds ~4e-4 relative (rms); a chunked layer chains 3-5 stages (scores, intra-chunk solve, state
update, output), the backward about twice as many: ~1e-3 rms, ~4e-3 at the largest of 10^4 elements,
below the largest output. So the same ten unit roundoffs as fp16: 5e-3 of max(1, scale).
1e-4 would fail a correct TF32 kernel for its arithmetic, not for a bug. Measured on an H200 (torch
2.11, triton 3.6, fla 0.6, 2026-12-04): RetNet's twin against fla at Triton's default TF32, hidden
128, 2 heads, 45 and 77 frames: output 3.4e-4, input gradient 9.3e-4 and 1.06e-3 at output scale
0.85, so 1e-4 fails it and 5e-3 passes it with a margin of about 5."""


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
    precision: str | None = None
    """fp32 arithmetic of the pair: ``ieee``, ``tf32`` or ``mixed`` (``bench.precision``)."""
    seconds: float | None = None
    """Wall time of the check (an fla kernel's first call includes Triton's autotuning)."""


@dataclass(frozen=True)
class Planned:
    """One check to run: a kernel pair at a length, or (``kernel == "-"``) a mixer with a note only."""

    mixer: str
    kernel: str
    reference: str
    length: int
    note: str = ""


def tolerance(dtype: str, arithmetic: str | None) -> float:
    """The bound for ``dtype`` at the pair's fp32 ``arithmetic`` (TF32 or a mix loosen fp32's)."""
    if dtype == "fp32" and arithmetic in ("tf32", "mixed"):
        return TF32_TOLERANCE
    return TOLERANCE[dtype]


def pair_precision(name: str, kernel: str, reference: str, device: str) -> str | None:
    """The fp32 arithmetic the two kernels run at on ``device`` now (``mixed`` when they differ)."""
    sides = []
    for side in (kernel, reference):
        fields = precision.fields(device, name, side)
        sides.append(precision.effective(side, fields["fp32_precision_torch"], fields["fp32_precision_triton"]))
    return precision.combine(*sides)


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
    started = time.monotonic()
    arithmetic = pair_precision(name, kernel, reference, device)
    bound = tolerance(dtype, arithmetic)
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
    except Exception as error:  # only fla's own refusals are notes; anything else is ``run``'s FAIL
        if reference != "fla":
            raise
        note = f"fla refused: {_raised(error)}"
        return Check(name, kernel, reference, length, None, None, None, bound, None, note, arithmetic,
                     time.monotonic() - started)
    max_abs = (y_tested.float() - y_base.float()).abs().max().item()
    scale = y_base.float().abs().max().item()
    passed = max_abs <= bound * max(1.0, scale)
    if not trains:
        return Check(name, kernel, reference, length, max_abs, scale, None, bound, passed,
                     f"output only: {kernel} has no backward on {torch.device(device).type}", arithmetic,
                     time.monotonic() - started)
    grad_max_abs = (grad_tested.float() - grad_base.float()).abs().max().item()
    grad_scale = grad_base.float().abs().max().item()
    passed = passed and grad_max_abs <= bound * max(1.0, grad_scale)
    note = "" if all(map(math.isfinite, (max_abs, grad_max_abs))) else "non-finite error"
    return Check(name, kernel, reference, length, max_abs, scale, grad_max_abs, bound, passed, note, arithmetic,
                 time.monotonic() - started)


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


def unpaired(name: str) -> str:
    """Why a mixer has no pair to check: one kernel only, fla only, or a second kernel this machine cannot run."""
    offered = mixers.kernels(name)
    if mixers.fla_only(name):
        return "fla only (no torch twin)"
    if len(offered) == 1:
        return f"one kernel ({offered[0]}): nothing to compare it with"
    return "no second kernel runnable here (fla needs CUDA or --interpret)"


def plan(names: list[str], lengths: list[int], device: str = "cpu") -> list[Planned]:
    """Every check ``run`` would make, in order: each mixer's pairs at each length."""
    planned = []
    for name in names:
        pairs = kernel_pairs(name, device)
        if not pairs:
            planned.append(Planned(name, "-", "-", 0, unpaired(name)))
        for kernel, reference in pairs:
            planned += [Planned(name, kernel, reference, length) for length in lengths]
    return planned


def run(planned: list[Planned], hidden: int, heads: int, device: str = "cpu", dtype: str = "fp32",
        time_limit_s: float | None = None, on_start: Callable[[Planned], None] = lambda item: None,
        ) -> Iterator[Check]:
    """Each planned check as it finishes. Past ``time_limit_s`` no new check starts (one running
    is finished, never cut), so the caller's unfinished items are what did not run."""
    started = time.monotonic()
    for item in planned:
        if time_limit_s is not None and time.monotonic() - started >= time_limit_s:
            return
        on_start(item)
        if item.kernel == "-":
            yield Check(item.mixer, "-", "-", 0, None, None, None, TOLERANCE[dtype], None, item.note)
        else:
            try:
                check = check_pair(item.mixer, item.kernel, item.reference, item.length, hidden, heads, device, dtype)
            except Exception as error:  # noqa: BLE001 - the tested kernel failed: a FAIL, and the run goes on
                check = Check(item.mixer, item.kernel, item.reference, item.length, None, None, None,
                              TOLERANCE[dtype], False, f"raised {_raised(error)}")
            yield check


def _raised(error: Exception) -> str:
    """``Type: first line of the message``: an error in one line of a check's note."""
    return f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"


def verify(names: list[str], lengths: list[int], hidden: int, heads: int, device: str = "cpu",
           dtype: str = "fp32") -> list[Check]:
    """Every check, run to the end: ``list(run(plan(...)))``."""
    return list(run(plan(names, lengths, device), hidden, heads, device, dtype))
