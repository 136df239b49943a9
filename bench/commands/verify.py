"""``bench verify``: numerical parity of every mixer's kernels, as a table."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

import mixers
from bench.cases import dtype_name
from bench.commands.options import Device, check_device, fail, split_list
from bench.commands.tables import console


def verify(
    device: Device = None,
    mixer_names: Annotated[str | None, typer.Option("--mixers", help="Comma-separated names. Default: all.")] = None,
    lengths: Annotated[str, typer.Option(help="Comma-separated lengths in frames; on both sides of 64 "
                                         "so fla's fused-recurrent and chunk kernels both run.")] = "45,77",
    hidden: Annotated[int, typer.Option(help="Model width (small: the interpreter is slow).")] = 128,
    heads: Annotated[int, typer.Option(help="Heads.")] = 2,
    dtype: Annotated[str, typer.Option(help="fp32, bf16 or fp16.")] = "fp32",
    interpret: Annotated[bool, typer.Option(help="On CPU, run fla's Triton kernels under Triton's "
                                            "interpreter (slow: seconds per mixer).")] = True,
) -> None:
    """Compare each mixer's kernels on one set of weights: max abs error of output and input gradient.

    On a GPU: torch twin vs fla for every mixer. On CPU: twin vs fla's reference ops, and twin vs fla's
    own kernels under Triton's interpreter.
    """
    device = check_device(device)
    try:
        dtype = dtype_name(dtype)
        # every registered mixer, fla-only ones included: their rows say they have no twin
        names = list(split_list(mixer_names) or mixers.names(include_fla_only=True))
        for name in names:
            mixers.kernels(name)
        frame_counts = [int(n) for n in lengths.split(",")]
    except ValueError as error:
        fail(str(error))
    if device == "cpu" and interpret:
        _interpret_triton()
    from bench.verify import verify as run

    checks = run(names, frame_counts, hidden, heads, device, dtype)
    table = Table(title=f"bench verify on {device} ({dtype}, hidden {hidden}, {heads} heads)")
    for column in ("mixer", "kernel vs reference", "length", "max abs err", "grad max abs err", "ref scale",
                   "pass"):
        table.add_column(column)
    for c in checks:
        verdict = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: c.note}[c.passed]
        table.add_row(c.mixer, f"{c.kernel} vs {c.reference}", str(c.length or ""), _e(c.max_abs),
                      _e(c.grad_max_abs), _e(c.scale), verdict)
    console().print(table)
    if any(c.passed is False for c in checks):
        raise typer.Exit(1)


def _interpret_triton() -> None:
    """Set up Triton's interpreter before anything imports fla (it is chosen when kernels are defined)."""
    import sys

    if "fla" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
        fail("fla was imported before Triton's interpreter could be enabled; run `bench verify` in a new process")
    os.environ["TRITON_INTERPRET"] = "1"
    from bench.interpreter import enable

    enable()


def _e(value: float | None) -> str:
    return "" if value is None else f"{value:.2e}"
