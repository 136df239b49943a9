"""A simulated device for the energy tests: a host clock, a power draw, and counters that move in steps.

Host time advances only when something happens on the host: a synchronous call (``call_s``), a
counter read (``read_s``, so a loop that polls a counter always gets somewhere), or waiting for
queued work. An ``asynchronous`` device (as CUDA) queues calls and runs them back to back while the
host goes on, and idles when its queue is empty. It draws ``watts`` while a call runs and
``idle_watts`` otherwise; its counter shows the energy at its last update, one every ``period_s``,
as NVML's and RAPL's counters do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Device:
    watts: float = 300.0
    idle_watts: float = 60.0
    call_s: float = 2e-3
    period_s: float = 20e-3
    read_s: float = 20e-6
    asynchronous: bool = False
    stalled: bool = False
    t: float = 0.0
    free_at: float = 0.0
    busy: list[tuple[float, float]] = field(default_factory=list)

    def call(self) -> None:
        start = max(self.t, self.free_at)
        self.free_at = start + self.call_s
        self.busy.append((start, self.free_at))
        if not self.asynchronous:
            self.t = self.free_at

    def mark(self) -> Callable[[], None]:
        until = self.free_at

        def wait() -> None:
            self.t = max(self.t, until)

        return wait

    def clock(self) -> float:
        return self.t

    def energy_at(self, when: float) -> float:
        running = sum(max(0.0, min(end, when) - start) for start, end in self.busy)
        return self.idle_watts * when + (self.watts - self.idle_watts) * running

    def counter_j(self) -> float:
        """The energy at the counter's last update, as a read now would show it."""
        self.t += self.read_s
        return 0.0 if self.stalled else self.energy_at(math.floor(self.t / self.period_s) * self.period_s)


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
