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
