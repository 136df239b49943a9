"""The sweep's live display of a cell's first call: ``kda:fla: first call (compiling, autotuning) 37 s``.

The runner reports when a cell's first (warm-up) call starts and ends (``bench.phase``); this
column shows the phase with a timer that Rich's refresh keeps running while the call lasts.
"""

from __future__ import annotations

import time

from rich.progress import ProgressColumn, Task
from rich.table import Column
from rich.text import Text

from bench.cases import Case
from bench.phase import PhaseEvent


def phase_label(case: Case, event: PhaseEvent, first: bool) -> str:
    """What the display says during the phase; ``first``: the worker has not run this series yet."""
    if first:
        # fla's Triton kernels, FlexAttention (fox:flex) and torch.compile compile (fla also autotunes)
        # in the first call.
        compiles = case.kernel in ("fla", "flex") or case.compile
        return f"{case.spec}: {event.name}" + (" (compiling, autotuning)" if compiles else "")
    return f"{case.spec} {case.seconds:g} s: warm-up call"


class PhaseColumn(ProgressColumn):
    """The running phase (``phase``, ``phase_started`` fields) and its seconds so far; else the description.

    It takes the description's place, the first column, so a narrow terminal still shows it whole.
    """

    def __init__(self):
        super().__init__(table_column=Column(no_wrap=True, overflow="ellipsis"))

    def render(self, task: Task) -> Text:
        label = task.fields.get("phase")
        if not label:
            return Text(task.description)
        seconds = time.monotonic() - task.fields["phase_started"]
        return Text(f"{label} {seconds:.0f} s", style="yellow")


def phase_fields(case: Case, event: PhaseEvent, first: bool) -> dict:
    """Task fields to set when a phase starts or ends."""
    if not event.started:
        return {"phase": None}
    return {"phase": phase_label(case, event, first), "phase_started": time.monotonic()}
