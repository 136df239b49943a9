"""Which arithmetic an fp32 matrix product used: IEEE fp32 or TF32, for PyTorch and for Triton.

Two libraries decide it, each with its own default (read from their sources: torch 2.13, triton 3.9,
fla 0.6):

- PyTorch: cuBLAS matmuls (and the Triton templates torch.compile writes, FlexAttention's among
  them) are IEEE unless ``torch.backends.cuda.matmul`` allows TF32; default IEEE. cuDNN
  convolutions default to TF32 (no mixer runs one). On CPU, matmuls are IEEE unless oneDNN's
  ``torch.backends.mkldnn.matmul.fp32_precision`` says otherwise.
- Triton: a ``tl.dot`` that names no ``input_precision`` takes ``TRITON_F32_DEFAULT``, else TF32 on
  an NVIDIA GPU with tensor cores for it (compute capability 8.0 and newer) and IEEE below or on AMD.
  The variable is read when a kernel is compiled and is part of Triton's cache key, so it must be set
  before the first kernel compiles; Triton's interpreter (CPU) computes every dot with NumPy in fp32.
- fla 0.6 names the precision of some dots itself: its WY kernels pass ``allow_tf32=False`` (IEEE),
  which holds while ``TRITON_F32_DEFAULT`` is unset (triton 3.9's ``tl.dot`` lets the variable win, so
  ``--fp32-precision tf32`` makes those TF32 too), and KDA's and Gated DeltaNet's forward intra-chunk
  solves use ``SOLVE_TRIL_DOT_PRECISION``, TF32 on 8.0 and newer (``FLA_PINNED_TF32``). Under an
  IEEE request those rows ran ``mixed``. Under Triton's own default, fla rows are labelled ``tf32``
  for their bulk dots although the WY and triangular-solve dots ran IEEE: strictly a mix, and
  ``bench verify`` judges them at the TF32 tolerance either way.

What rows record (``fields``): ``fp32_precision`` what ``--fp32-precision`` asked for (None: each
library's own default, or the user's environment); ``fp32_precision_torch`` and
``fp32_precision_triton`` what was in force. Every row records them, bf16 ones too (their kernels
still multiply some fp32 intermediates); comparisons look at fp32 rows only. On CPU Triton does
not run (None), unless Triton's interpreter does (``ieee``).
"""

from __future__ import annotations

import importlib
import os

import torch

CHOICES = ("ieee", "tf32")
TRITON_ENV = "TRITON_F32_DEFAULT"
REQUEST_ENV = "MIXBENCH_FP32_PRECISION"
"""Carries ``--fp32-precision`` to spawned workers, which set PyTorch's flags from it (``adopt``)."""
FLA_PINNED_TF32 = {
    "kda": ("fla.ops.kda.chunk_intra", "SOLVE_TRIL_DOT_PRECISION"),
    "gated_deltanet": ("fla.ops.gated_delta_rule.chunk_fwd", "SOLVE_TRIL_DOT_PRECISION"),
}
"""fla mixers whose forward pins some dots' precision: (module, constant) read at run time."""
FIELDS = ("fp32_precision", "fp32_precision_torch", "fp32_precision_triton")


def check_choice(value: str) -> str:
    """``value`` as one of ``CHOICES``; a ValueError naming the choices otherwise."""
    choice = value.strip().lower()
    if choice not in CHOICES:
        raise ValueError(f"unknown fp32 precision {value!r}; choose from {', '.join(CHOICES)}")
    return choice


def apply(value: str | None) -> str | None:
    """Set PyTorch's and Triton's fp32 precision in this process and in processes it starts later.

    Call before any kernel compiles. None leaves every library's own default (and the environment)."""
    if value is None:
        return None
    choice = check_choice(value)
    os.environ[TRITON_ENV] = choice
    os.environ[REQUEST_ENV] = choice
    _set_torch(choice)
    return choice


def adopt() -> str | None:
    """In a spawned worker: take the parent's request (its environment) for PyTorch's flags too."""
    requested = os.environ.get(REQUEST_ENV)
    return apply(requested) if requested else None


def _set_torch(choice: str) -> None:
    # The legacy flags: every torch version has them, and they keep the new ``fp32_precision``
    # getters readable (mixing the new setters with legacy getters raises in torch 2.13).
    # oneDNN (CPU) is left alone: ``torch.set_float32_matmul_precision`` would switch it too.
    torch.backends.cuda.matmul.allow_tf32 = choice == "tf32"
    torch.backends.cudnn.allow_tf32 = choice == "tf32"


def requested() -> str | None:
    return os.environ.get(REQUEST_ENV)


def torch_precision(device: str) -> str:
    """Precision of PyTorch's fp32 matmuls on ``device``: ``ieee``, ``tf32`` (or oneDNN's ``bf16``)."""
    cuda = torch.device(device).type == "cuda"
    try:
        value = (torch.backends.cuda.matmul if cuda else torch.backends.mkldnn.matmul).fp32_precision
    except AttributeError:  # torch before the fp32_precision API
        legacy = torch.get_float32_matmul_precision()
        if cuda:
            return "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee"
        return {"highest": "ieee", "high": "tf32", "medium": "bf16"}.get(legacy, legacy)
    return "ieee" if value == "none" else value


def triton_precision(device: str) -> str | None:
    """Precision of Triton dots that name none: None where no Triton kernel runs (CPU)."""
    if torch.device(device).type != "cuda":
        return "ieee" if os.environ.get("TRITON_INTERPRET") == "1" else None
    chosen = os.environ.get(TRITON_ENV)
    if chosen:
        return chosen.strip().lower()
    if torch.version.hip:
        return "ieee"
    major, _minor = torch.cuda.get_device_capability(torch.device(device))
    return "tf32" if major >= 8 else "ieee"


def fla_pinned(mixer: str) -> str | None:
    """The precision fla's source pins for part of ``mixer``'s forward, when it pins one."""
    if mixer not in FLA_PINNED_TF32:
        return None
    module, constant = FLA_PINNED_TF32[mixer]
    try:
        value = getattr(importlib.import_module(module), constant)
    except (ImportError, AttributeError):
        return None
    return str(getattr(value, "value", value)).lower()


def fields(device: str, mixer: str | None = None, kernel: str | None = None) -> dict:
    """The three row fields for a cell of ``mixer:kernel`` measured now on ``device``."""
    triton = triton_precision(device)
    if kernel == "fla" and triton is not None and torch.device(device).type == "cuda":
        pinned = fla_pinned(mixer)
        if pinned is not None and pinned != triton:
            triton = "mixed"
    return {"fp32_precision": requested(), "fp32_precision_torch": torch_precision(device),
            "fp32_precision_triton": triton}


def stamp(row, device: str):
    """``row`` (a ``bench.results.Row``) with the fields filled where it has none; returned."""
    if getattr(row, "fp32_precision_torch", None) is None:
        for name, value in fields(device, row.mixer, row.kernel).items():
            setattr(row, name, value)
    return row


def effective(kernel: str, torch_value: str | None, triton_value: str | None) -> str | None:
    """What a cell of ``kernel`` ran at: fla's layers are PyTorch projections around Triton kernels."""
    if kernel != "fla" or triton_value is None:
        return torch_value
    return combine(torch_value, triton_value)


def combine(*values: str | None) -> str | None:
    """One word for several parts: the common value, or ``mixed``; None when none is known."""
    known = {v for v in values if v is not None}
    if not known:
        return None
    return known.pop() if len(known) == 1 else "mixed"


def check_resume(rows, current: dict) -> None:
    """Refuse to add rows at another precision to a file whose rows recorded one (ValueError)."""
    now = (current["fp32_precision_torch"], _default(current["fp32_precision_triton"]))
    for row in rows:
        if row.get("fp32_precision_torch") is None:
            continue  # written before rows recorded it
        before = (row["fp32_precision_torch"], _default(row.get("fp32_precision_triton")))
        if before != now:
            raise ValueError(
                f"the results file holds rows measured at fp32 precision torch={before[0]}, triton={before[1]}; "
                f"this run has torch={now[0]}, triton={now[1]}. Write to another --out file")


def _default(triton_value: str | None) -> str | None:
    # "mixed" arises only where fla pins TF32 over an IEEE default (every pin is TF32).
    return "ieee" if triton_value == "mixed" else triton_value
