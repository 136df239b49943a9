"""``bench sweep``: measure latency and peak memory of mixers over audio lengths."""

from __future__ import annotations

import hashlib
import socket
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from bench.cases import PRESETS, Case, Sweep, preset
from bench.commands import anytime
from bench.commands.options import Device, Fp32Precision, check_device, fail, set_precision, split_list
from bench.commands.progress import PhaseColumn, phase_fields
from bench.commands.tables import console, rows_table
from bench.deadline import TimeBox
from bench.energy import switch_off
from bench.phase import PhaseEvent
from bench.precision import check_resume
from bench.results import ResultsWriter
from bench.runner import Outcome, run_sweep
from bench.shard import parse_shard
from bench.sysinfo import environment

RESULTS_DIR = Path("results")


def sweep(
    preset_name: Annotated[str | None, typer.Option("--preset", help=f"One of: {', '.join(PRESETS)}. "
                                                    "Default: quick on CPU, paper on CUDA.")] = None,
    mixer_specs: Annotated[str | None, typer.Option("--mixers", help="Comma-separated name[:kernel], "
                                                    "e.g. sa:naive,sa:sdpa,kda. Default: every mixer.")] = None,
    seconds: Annotated[str | None, typer.Option(help="Comma-separated audio lengths in seconds.")] = None,
    dtype: Annotated[str | None, typer.Option(help="Comma-separated dtypes: fp32, bf16, fp16.")] = None,
    batch: Annotated[str | None, typer.Option(help="Comma-separated batch sizes.")] = None,
    device: Device = None,
    hidden: Annotated[int | None, typer.Option(help="Model width (paper: 1024).")] = None,
    heads: Annotated[int | None, typer.Option(help="Attention heads (paper: 4).")] = None,
    reps: Annotated[int | None, typer.Option(help="Minimum timed repetitions per cell.")] = None,
    budget: Annotated[float | None, typer.Option(help="Seconds of timed calls per cell.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds before a cell is abandoned.")] = None,
    out: Annotated[Path | None, typer.Option(help="Results file. Default: results/<preset>-<device>-"
                                             "<host>-<grid hash>.jsonl, so re-running resumes.")] = None,
    isolate: Annotated[bool, typer.Option(help="Run cells in a worker process (timeouts, OOM kills).")] = True,
    mode: Annotated[str | None, typer.Option(help="Comma-separated modes: forward (inference), train "
                                             "(forward + backward), stream (one step after T frames).")] = None,
    optimizer_step: Annotated[bool, typer.Option(help="train mode: an AdamW step after the backward, "
                                                 "inside the timed call.")] = False,
    compile_mixer: Annotated[bool, typer.Option("--compile", help="Wrap the mixer in torch.compile "
                                                "(compile time goes into warmup_ms).")] = False,
    cuda_graphs: Annotated[bool, typer.Option(help="Capture each cell's call in a CUDA graph and time its "
                                              "replays (CUDA only).")] = False,
    bidirectional: Annotated[bool, typer.Option(help="Run each mixer forward and a second one (own weights) "
                                                "on the reversed sequence, combined by --combine.")] = False,
    combine: Annotated[str, typer.Option(help="Bidirectional join: sum, or concat + a linear 2D -> D.")] = "sum",
    causal: Annotated[bool | None, typer.Option("--causal/--no-causal", help="Softmax attention's mask "
                                                "(default: none; the other mixers are causal by "
                                                "construction).")] = None,
    fp32_precision: Fp32Precision = None,
    time_limit: Annotated[float | None, typer.Option(help="Stop within SECONDS: every mixer's shortest and "
                                                     "longest lengths first, then the lengths between; "
                                                     "run again to continue. With --no-isolate a running "
                                                     "cell cannot be cut at the deadline.")] = None,
    shard_text: Annotated[str | None, typer.Option("--shard", help="K/N: every N-th cell from cell K "
                                                   "(K from 0, as SLURM's --array=0-(N-1)), in its own "
                                                   "file.")] = None,
    energy: Annotated[bool, typer.Option("--energy/--no-energy", help="Joules per call after the timed calls "
                                         "(NVML or RAPL; about 1 s per cell on a GPU).")] = True,
) -> None:
    """Measure latency and peak memory of each mixer alone, at batch 1, over audio lengths.

    Example: bench sweep --preset quick --mixers sa:naive,sa:sdpa --seconds 10,50
    Example: bench sweep --mode forward,train --optimizer-step --bidirectional --combine concat
    Example: bench sweep --preset paper --time-limit 840 --shard $SLURM_ARRAY_TASK_ID/4
    """
    box_started = time.monotonic()
    device = check_device(device)
    fp32_precision = set_precision(fp32_precision, device)
    if not energy:
        switch_off()  # before the header and the worker: both read the switch
    name = preset_name or ("paper" if device.startswith("cuda") else "quick")
    try:
        plan = preset(
            name, mixers=split_list(mixer_specs), seconds=_numbers(seconds, float), dtypes=split_list(dtype),
            batches=_numbers(batch, int), device=device, hidden=hidden, heads=heads, min_reps=reps,
            budget_s=budget, timeout_s=timeout, modes=split_list(mode), optimizer_step=optimizer_step or None,
            compile=compile_mixer or None, cuda_graphs=cuda_graphs or None, bidirectional=bidirectional or None,
            combine=combine, causal=causal,
        )
        shard = parse_shard(shard_text) if shard_text is not None else None
        box = anytime.time_box(time_limit, plan, started=box_started)
        cases = anytime.arrange(plan.cases(), shard, time_limit)
    except ValueError as error:
        fail(str(error))
    path = out or anytime.shard_path(default_path(name, plan, fp32_precision), shard)
    writer = ResultsWriter(path)
    header = environment(device)
    try:
        check_resume(writer.done.values(), header)
    except ValueError as error:
        fail(f"{path}: {error}")
    writer.write_header({**header, "preset": name, "cells": len(cases), **anytime.header_fields(shard, time_limit)})
    screen = console()
    resumed = sum(case.key in writer.done for case in cases)
    screen.print(f"{len(cases)} cells -> {path}" + (f" ({resumed} already done, resuming)" if resumed else ""))
    outcomes = _run_with_progress(plan, writer, cases, isolate, screen, box)
    screen.print(rows_table([o.row for o in outcomes], title=f"bench sweep: {name} on {device}"))
    done = sum(case.key in writer.done for case in cases)
    beyond = anytime.too_long(cases, writer.done, writer.cuts, time_limit)
    if box is not None and (line := anytime.stop_line(done, len(cases), box.elapsed(), beyond)):
        screen.print(line)


def _run_with_progress(plan: Sweep, writer: ResultsWriter, cases: list[Case], isolate: bool,
                       screen: Console, box: TimeBox | None) -> list[Outcome]:
    columns = (PhaseColumn(), BarColumn(bar_width=20), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=screen, transient=False) as progress:
        task = progress.add_task("sweep", total=len(cases))

        def advance(outcome: Outcome) -> None:
            row = outcome.row
            note = "resumed" if outcome.resumed else row["status"]
            # phase=None: a worker killed during a first call (timeout, OOM) never reports its end
            progress.update(task, advance=1, description=f"{outcome.case.id} [{note}]", phase=None)

        def show_phase(case: Case, event: PhaseEvent, first: bool) -> None:
            progress.update(task, **phase_fields(case, event, first))

        return run_sweep(plan, writer, isolate=isolate, on_outcome=advance, cases=cases, timebox=box,
                         on_phase=show_phase)


def _numbers(text: str | None, kind: type) -> tuple | None:
    items = split_list(text)
    if items is None:
        return None
    try:
        return tuple(kind(item) for item in items)
    except ValueError:
        fail(f"expected comma-separated {kind.__name__} values, got {text!r}")


def default_path(preset_name: str, plan: Sweep, fp32_precision: str | None = None) -> Path:
    """Same command on the same machine -> same file, so re-running it resumes the sweep.

    A set ``--fp32-precision`` joins the hash: another precision is another file."""
    grid = repr(sorted(case.key for case in plan.cases())) + (f"-{fp32_precision}" if fp32_precision else "")
    grid = grid.encode()
    digest = hashlib.sha1(grid).hexdigest()[:8]
    device = plan.device.replace(":", "")
    return RESULTS_DIR / f"{preset_name}-{device}-{socket.gethostname()}-{digest}.jsonl"
