"""Option aliases shared by every command, so help text is identical everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
import typer

from bench.errors import fail

Device = Annotated[
    str | None,
    typer.Option(help="Device to run on: cpu, cuda or cuda:N. Default: cuda when present, else cpu."),
]
Fp32Precision = Annotated[
    str | None,
    typer.Option("--fp32-precision", help="fp32 matmul arithmetic for PyTorch and Triton (fla): ieee or tf32, "
                 "set before anything compiles. Default: each library's own (CUDA: PyTorch ieee, Triton tf32)."),
]
ResultsFiles = Annotated[list[Path], typer.Argument(help="Results files (JSON lines) written by `bench sweep`.")]


def check_device(device: str | None) -> str:
    """The device to use; a clear one-line error when CUDA is asked for and absent."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except RuntimeError:
        fail(f"unknown device {device!r}; use cpu, cuda or cuda:N")
    if kind == "cuda" and not torch.cuda.is_available():
        fail("CUDA was asked for but this machine has no usable CUDA device; use --device cpu")
    if kind not in ("cpu", "cuda"):
        fail(f"device {device!r} is not supported; use cpu or cuda")
    return device


def set_precision(value: str | None, device: str) -> str | None:
    """Apply ``--fp32-precision`` (``bench.precision``); a bad value is a one-line error."""
    from bench import precision

    try:
        chosen = precision.apply(value)
    except ValueError as error:
        fail(str(error))
    if chosen == "tf32" and torch.device(device).type == "cpu":
        typer.echo("bench: note: --fp32-precision tf32 changes nothing on CPU (its matmuls stay IEEE fp32)",
                   err=True)
    return chosen


def split_list(text: str | None) -> tuple[str, ...] | None:
    """``"a, b,c"`` -> ``("a", "b", "c")``; None stays None (the preset's own value)."""
    if text is None:
        return None
    items = tuple(part.strip() for part in text.split(",") if part.strip())
    if not items:
        fail(f"expected a comma-separated list, got {text!r}")
    return items


def check_files(paths: list[Path]) -> list[Path]:
    for path in paths:
        if not path.is_file():
            fail(f"no such results file: {path}")
    return paths
