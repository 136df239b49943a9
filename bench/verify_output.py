"""``bench verify``'s output: one line per check the moment it finishes, a live status line while a
check runs, and the same checks as JSON lines (a header, one ``check`` per line, one ``not_run`` per
check a time limit left out), each flushed as it is written.

fla's first call of a mixer on CUDA compiles and autotunes its Triton kernels, forward and backward:
on an H200, 48-110 s per mixer for the forward alone (``gpu-runs/nvidia-h200-2026-12-04``), 151 s
for RetNet's forward and backward at TF32, over 240 s at ``TRITON_F32_DEFAULT=ieee``. The status
line says so and counts the seconds, so a silent minute reads as work, not a hang.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bench.verify import Check, Planned, run

AUTOTUNE_NOTE = "first call of fla's kernels: Triton compiles and autotunes them (minutes)"


class ChecksFile:
    """JSON lines, written and flushed one at a time (a run cut short keeps what it finished)."""

    def __init__(self, path: Path, header: dict):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("", encoding="utf-8")
        self.write({**header, "kind": "header"})

    def write(self, obj: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(_finite(obj), allow_nan=False, default=str) + "\n")
            f.flush()

    def check(self, check: Check) -> None:
        self.write({"kind": "check", **asdict(check)})

    def not_run(self, item: Planned) -> None:
        self.write({"kind": "not_run", **asdict(item)})


def _finite(obj: dict) -> dict:
    """NaN and infinities as null: strict JSON readers refuse them (the check's note says so)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in obj.items()}


def line(check: Check) -> str:
    """One check as a line of rich markup, in columns that line up from check to check."""
    verdict = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: "[yellow]note[/yellow]"}[check.passed]
    pair = f"{check.kernel} vs {check.reference}" if check.kernel != "-" else ""
    text = f"{verdict}  {check.mixer:<15} {pair:<20} {check.length or '':>6}"
    if check.max_abs is not None:
        grad = "   -    " if check.grad_max_abs is None else f"{check.grad_max_abs:.2e}"  # output-only checks
        text += (f"  err {check.max_abs:.2e}  grad {grad}  scale {check.scale:.2e}"
                 f"  tol {check.tolerance:.0e} ({check.precision or '-'})")
    if check.seconds is not None:
        text += f"  {check.seconds:.1f} s"
    return text + (f"  {escape(check.note)}" if check.note else "")


def status_text(item: Planned, device: str, autotuned: set[str]) -> str:
    """What the live line says while ``item`` runs; the first fla call of each mixer on CUDA warns of
    autotuning (``autotuned`` collects the mixers already announced)."""
    what = f"{item.mixer}: {item.kernel} vs {item.reference} at {item.length} frames"
    if "fla" in (item.kernel, item.reference) and device.startswith("cuda") and item.mixer not in autotuned:
        autotuned.add(item.mixer)
        what += f" ({AUTOTUNE_NOTE})"
    return what


def stream(planned: list[Planned], hidden: int, heads: int, device: str, dtype: str, screen: Console,
           out: ChecksFile | None = None, time_limit_s: float | None = None) -> tuple[list[Check], list[Planned]]:
    """Run ``planned``, printing and writing each check as it finishes; (checks, not run)."""
    checks: list[Check] = []
    autotuned: set[str] = set()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=screen, transient=True) as progress:
        task = progress.add_task("", total=None)

        def starting(item: Planned) -> None:
            progress.reset(task, description=escape(status_text(item, device, autotuned)))

        for check in run(planned, hidden, heads, device, dtype, time_limit_s, on_start=starting):
            checks.append(check)
            progress.console.print(line(check), highlight=False)
            if out is not None:
                out.check(check)
    left = planned[len(checks):]
    if out is not None:
        for item in left:
            out.not_run(item)
    return checks, left


def summary(checks: list[Check], left: list[Planned], time_limit_s: float | None) -> str:
    counts = {verdict: sum(c.passed is verdict for c in checks) for verdict in (True, False, None)}
    text = f"{len(checks)} checks: {counts[True]} pass, {counts[False]} fail, {counts[None]} notes"
    if left:
        names = ", ".join(f"{i.mixer} {i.kernel} vs {i.reference} at {i.length}" if i.kernel != "-" else i.mixer
                          for i in left)
        text += f"\ntime limit of {time_limit_s:g} s reached; not run ({len(left)}): {names}"
    return text
