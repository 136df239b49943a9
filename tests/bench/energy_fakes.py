"""A simulated device for the energy tests: a clock, a power draw, and counters that move in steps.

Time advances only when something happens: a call (``call_s``), a counter read (``read_s``, so a
loop that polls a counter always gets somewhere), or a sync. Energy accrues at ``watts`` while
calls run and at ``idle_watts`` otherwise; a counter shows the energy at its last update, one every
``period_s``, as NVML's and RAPL's counters do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Device:
    watts: float = 300.0
    idle_watts: float = 60.0
    call_s: float = 2e-3
    period_s: float = 20e-3
    read_s: float = 20e-6
    t: float = 0.0
    joules: float = 0.0
    calls: int = 0
    stalled: bool = False
    shown: float = 0.0

    def _advance(self, seconds: float, watts: float) -> None:
        end = self.t + seconds
        update = math.floor(end / self.period_s) * self.period_s
        if update > self.t:  # the counter updated during this step: it now shows the energy at ``update``
            self.shown = self.joules + (update - self.t) * watts
        self.t, self.joules = end, self.joules + seconds * watts

    def call(self) -> None:
        self._advance(self.call_s, self.watts)
        self.calls += 1

    def clock(self) -> float:
        return self.t

    def counter_j(self) -> float:
        """The energy at the counter's last update, as a read now would show it."""
        self._advance(self.read_s, self.idle_watts)
        return 0.0 if self.stalled else self.shown


class FakeCounter:
    """A counter (the ``bench.energy`` protocol) reading a simulated device."""

    source = "fake"
    scope = "a simulated device"

    def __init__(self, device: Device):
        self.device = device

    def read_j(self) -> float:
        return self.device.counter_j()


class FakeNvml:
    """The parts of pynvml the energy meter uses, for GPUs given by bus id -> (uuid, millijoules)."""

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):
        pass

    def __init__(self, gpus: dict[str, tuple[str, int]], supported: bool = True):
        self.gpus, self.supported, self.initialised = gpus, supported, False

    def nvmlInit(self) -> None:
        self.initialised = True

    def nvmlDeviceGetHandleByPciBusId(self, bus_id: str) -> str:
        if bus_id not in self.gpus:
            raise self.NVMLError("Not Found")
        return bus_id

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:
        for bus_id, (known, _) in self.gpus.items():
            if known == uuid:
                return bus_id
        raise self.NVMLError("Not Found")

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: str) -> int:
        if not self.initialised:
            raise self.NVMLError("Uninitialized")
        if not self.supported:
            raise self.NVMLError_NotSupported("Not Supported")
        return self.gpus[handle][1]


@dataclass
class Properties:
    """What ``torch.cuda.get_device_properties`` gives, as far as the NVML lookup reads it."""

    name: str
    pci_domain_id: int
    pci_bus_id: int
    pci_device_id: int
    uuid: str
