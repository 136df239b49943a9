"""``bench verify``: numerical parity of every mixer's kernels, one line per check as it finishes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

import mixers
from bench.cases import dtype_name
from bench.commands.options import Device, Fp32Precision, check_device, fail, set_precision, split_list
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
    out: Annotated[Path | None, typer.Option(help="Also write the checks as JSON lines: a header (device, "
                                             "versions, precision), then one line per check.")] = None,
    time_limit: Annotated[float | None, typer.Option(help="Start no check after this many seconds; list "
                                                     "the checks that did not run.")] = None,
    fp32_precision: Fp32Precision = None,
) -> None:
    """Compare each mixer's kernels on one set of weights: max abs error of output and input gradient.

    On a GPU: torch twin vs fla for every mixer. On CPU: twin vs fla's reference ops, and twin vs fla's
    own kernels under Triton's interpreter. fp32 pairs are judged at the precision in force (IEEE 1e-4,
    TF32 5e-3 of the output scale).

    Example: bench verify --device cuda --mixers kda,retnet --out verify.jsonl --time-limit 600
    """
    device = check_device(device)
    set_precision(fp32_precision, device)
    try:
        dtype = dtype_name(dtype)
        # every registered mixer, fla-only ones included: their rows say they have no twin
        names = list(split_list(mixer_names) or mixers.names(include_fla_only=True))
        for name in names:
            mixers.kernels(name)
        frame_counts = [int(n) for n in lengths.split(",")]
        if min(frame_counts) < 1:
            raise ValueError(f"--lengths must be positive frame counts, got {lengths}")
    except ValueError as error:
        fail(str(error))
    if time_limit is not None and time_limit <= 0:
        fail(f"--time-limit must be positive, got {time_limit:g}")
    if device == "cpu" and interpret:
        _interpret_triton()
    from bench.sysinfo import environment
    from bench.verify import plan
    from bench.verify_output import ChecksFile, stream, summary

    header = environment(device)
    screen = console()
    screen.print(f"bench verify on {device} ({header['device_name']}): {dtype}, hidden {hidden}, {heads} heads\n"
                 f"fp32 matmuls: PyTorch {header['fp32_precision_torch']}, Triton "
                 f"{header['fp32_precision_triton'] or 'not used'}; fp32 tolerance 1e-4 (IEEE), 5e-3 (TF32)",
                 highlight=False)
    planned = plan(names, frame_counts, device)
    settings = dict(dtype=dtype, hidden=hidden, heads=heads, lengths=frame_counts, mixers=names,
                    time_limit_s=time_limit, planned=len(planned))
    writer = ChecksFile(out, {**header, **settings}) if out is not None else None
    checks, left = stream(planned, hidden, heads, device, dtype, screen, writer, time_limit)
    screen.print(summary(checks, left, time_limit), highlight=False)
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
