"""The energy meter of a device, and what it puts in results: one header entry, fields per row.

``cuda`` devices read NVML (``bench.energy.nvml``), ``cpu`` the RAPL package counters
(``bench.energy.rapl``); anything else, or a counter that cannot be read, gives no meter and a
one-line reason, which the header states once; rows then carry nulls, never an invented number.
A meter is opened once per process and device (NVML's start-up and the update-period probe cost
up to half a second), and a benchmark worker measures many cells with it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import torch

from bench.energy import window
from bench.energy.nvml import open_nvml
from bench.energy.rapl import open_rapl
from bench.energy.window import CounterStalled, Meter

FIELDS = ("energy_source", "energy_j_per_call", "power_w_mean", "energy_window_s", "energy_calls", "energy_note")
"""Row fields, all null without a meter; ``energy_note`` says why a cell with a meter has no reading."""
SWITCH = "MIXBENCH_ENERGY"
"""``0`` turns the meter off (``bench sweep --no-energy``): an environment variable, so the spawned
benchmark worker inherits it. On a GPU the window costs about 1.1 s per cell (H200, NVML's 100 ms
update period): a time-boxed sweep may rather spend that on more cells."""


def switch_off() -> None:
    """No meter in this process or the workers it starts from now on (before any ``open_meter`` call)."""
    os.environ[SWITCH] = "0"


@functools.cache
def open_meter(device: str) -> tuple[Meter | None, str | None]:
    """(meter, None) or (None, why there is none): the device's counter with its measured update period."""
    kind = torch.device(device)
    if os.environ.get(SWITCH) == "0":
        return None, f"switched off ({SWITCH}=0, bench sweep --no-energy)"
    if kind.type == "cuda":
        counter, reason = open_nvml(torch.cuda.get_device_properties(kind))
    elif kind.type == "cpu":
        counter, reason = open_rapl()
    else:
        counter, reason = None, f"no energy counter is known for {kind.type} devices"
    if counter is None:
        return None, reason
    period, read_s = window.update_period(counter.read_j)
    if period is None:
        return None, f"the {counter.source} counter did not change within {window.STALL_S:g} s while idle"
    return Meter(counter, period, read_s), None


def header(device: str) -> dict:
    """The results header's ``energy`` entry: where joules come from and how, or why there are none."""
    meter, reason = open_meter(device)
    if meter is None:
        return {"source": None, "reason": reason}
    return {"source": meter.counter.source, "scope": meter.counter.scope, "update_period_s": meter.period_s,
            "read_s": meter.read_s,
            "window": f"repeated calls after the timed ones, at least {window.PERIODS} update periods and "
                      f"{window.MIN_WINDOW_S:g} s, both ends on a counter change"}


def row_fields(call: Callable[[], object], device: str | torch.device, median_ms: float) -> dict:
    """Energy fields of a row: joules per call and mean watts of ``call``, or nulls (and a note)."""
    meter, _reason = open_meter(str(device))
    empty = dict.fromkeys(FIELDS)
    if meter is None:
        return empty
    mark = functools.partial(_cuda_mark, torch.device(device)) if torch.device(device).type == "cuda" \
        else window.synchronous
    try:
        reading = window.measure(call, meter, median_ms / 1e3, mark)
    except CounterStalled as error:
        return {**empty, "energy_source": meter.counter.source, "energy_note": str(error)}
    return {**empty, "energy_source": meter.counter.source, "energy_j_per_call": reading.joules_per_call,
            "power_w_mean": reading.watts, "energy_window_s": reading.window_s, "energy_calls": reading.calls}


def _cuda_mark(device: torch.device) -> Callable[[], None]:
    """An event after the work queued so far on ``device``'s current stream (not the current device's:
    ``--device cuda:1``); waiting on it waits for that work."""
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(device))
    return event.synchronize
