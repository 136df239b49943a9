"""The energy counters and the window over them, on simulated devices and a fake sysfs tree.

``energy_fakes.Device`` has a known power draw and a counter that moves in steps, so the window's
joules per call and watts have answers computable by hand; RAPL reads a tree built in tmp_path,
NVML a fake module with two GPUs.
"""

from __future__ import annotations

import pytest

from bench.energy import nvml, rapl, window
from bench.energy.window import CounterStalled, Meter
from tests.bench.energy_fakes import Device, FakeCounter, FakeNvml, Properties


def _measure(device: Device, **options):
    meter = Meter(FakeCounter(device), device.period_s, device.read_s)
    return window.measure(device.call, meter, device.call_s, mark=device.mark, clock=device.clock, **options)


@pytest.mark.parametrize("call_s, period_s", [(2e-3, 20e-3), (0.2e-3, 50e-3), (0.3, 1e-3), (5e-3, 100e-3)],
                         ids=lambda v: f"{v * 1e3:g}ms")
def test_window_gives_the_devices_power_and_energy_per_call(call_s, period_s):
    device = Device(watts=300.0, idle_watts=60.0, call_s=call_s, period_s=period_s)
    reading = _measure(device)
    # Both ends sit on a counter change to within one burst (an eighth of a period, or one call): 2.5% at 10 periods.
    assert reading.watts == pytest.approx(300.0, rel=0.025)
    assert reading.joules_per_call == pytest.approx(300.0 * call_s, rel=0.025)
    assert reading.window_s >= max(window.PERIODS * period_s, window.MIN_WINDOW_S)
    assert reading.calls * call_s == pytest.approx(reading.window_s, rel=0.025)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_call_longer_than_four_windows_is_measured_alone(asynchronous):
    # RAPL-like: 1 ms steps, a 0.5 s call (window 0.1 s): one call between two reads, not four calls
    device = Device(watts=300.0, idle_watts=60.0, call_s=0.5, period_s=1e-3, asynchronous=asynchronous)
    started = device.t
    reading = _measure(device)
    assert reading.calls == 1 and reading.window_s == pytest.approx(0.5, rel=0.01)
    assert reading.joules_per_call == pytest.approx(300.0 * 0.5, rel=2 * 1e-3 / 0.5)
    assert device.t - started == pytest.approx(0.5, rel=0.01)  # the window cost one call


def test_an_asynchronous_device_never_idles_while_the_counter_is_read():
    # As NVML on an H200: 100 ms steps, 3.4 ms per read, 21.5 ms per call. Waiting for the device
    # before each read would leave it idle for the read; queuing the next burst first does not.
    device = Device(call_s=21.5e-3, period_s=0.1, read_s=3.4e-3, asynchronous=True)
    reading = _measure(device)
    assert reading.watts == pytest.approx(300.0, rel=0.025)
    assert reading.joules_per_call == pytest.approx(300.0 * 21.5e-3, rel=0.025)
    # A burst of calls lasts at least two reads even where an eighth of the period is shorter.
    fast = Device(call_s=0.2e-3, period_s=10e-3, read_s=3.4e-3, asynchronous=True)
    assert _measure(fast).watts == pytest.approx(300.0, rel=0.05)


def test_a_short_window_on_a_coarse_counter_would_be_wrong_and_the_window_is_not():
    # 10 calls of 0.2 ms against a 50 ms counter: read around them directly, the counter mostly does not move.
    device = Device(call_s=0.2e-3, period_s=50e-3)
    device.t = 1e-3
    before = device.counter_j()
    for _ in range(10):
        device.call()
    assert device.counter_j() == before
    assert _measure(device).joules_per_call == pytest.approx(300.0 * 0.2e-3, rel=0.05)


def test_stalled_counter_gives_no_number():
    device = Device(stalled=True)
    with pytest.raises(CounterStalled, match="did not change"):
        _measure(device)


def test_update_period_is_the_longest_gap_between_changes():
    device = Device(period_s=20e-3, read_s=50e-6)
    period, read_s = window.update_period(FakeCounter(device).read_j, device.clock)
    assert period == pytest.approx(20e-3, abs=1e-4) and read_s == pytest.approx(50e-6)
    stalled = Device(stalled=True)
    assert window.update_period(FakeCounter(stalled).read_j, stalled.clock, stall_s=0.1)[0] is None


# --- RAPL: a fake /sys/class/powercap --------------------------------------------------------------

def _zone(root, name, label, energy_uj, range_uj=1_000_000):
    zone = root / name
    zone.mkdir()
    (zone / "name").write_text(label + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{range_uj}\n")
    return zone


@pytest.fixture
def powercap(tmp_path):
    zones = {"p0": _zone(tmp_path, "intel-rapl:0", "package-0", 900_000),
             "p1": _zone(tmp_path, "intel-rapl:1", "package-1", 100),
             "core": _zone(tmp_path, "intel-rapl:0:0", "core", 5),
             "psys": _zone(tmp_path, "intel-rapl:2", "psys", 7),
             "mmio": _zone(tmp_path, "intel-rapl-mmio:0", "package-0", 9)}
    return tmp_path, zones


def test_rapl_adds_package_zones_only(powercap):
    root, zones = powercap
    assert rapl.package_zones(root) == [zones["p0"], zones["p1"]]
    counter, reason = rapl.open_rapl(root)
    assert reason is None and "package-0, package-1" in counter.scope
    (zones["p0"] / "energy_uj").write_text("950000\n")
    (zones["p1"] / "energy_uj").write_text("300\n")
    (zones["core"] / "energy_uj").write_text("999999\n")
    assert counter.read_j() == pytest.approx((50_000 + 200) / 1e6)


def test_rapl_counts_across_a_wrap(powercap):
    root, zones = powercap
    counter, _ = rapl.open_rapl(root)
    (zones["p0"] / "energy_uj").write_text("990000\n")
    assert counter.read_j() == pytest.approx(0.09)
    # Wrapped at 1,000,000 uJ: 10,000 uJ to the top, then 20,000 after it.
    (zones["p0"] / "energy_uj").write_text("20000\n")
    assert counter.read_j() == pytest.approx(0.09 + 0.03)


def test_rapl_unavailable_says_why(tmp_path, powercap, monkeypatch):
    assert "does not exist" in rapl.open_rapl(tmp_path / "missing")[1]
    assert "no RAPL package zone" in rapl.open_rapl(tmp_path / "intel-rapl:0")[1]

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(rapl, "read_uj", denied)
    counter, reason = rapl.open_rapl(powercap[0])
    assert counter is None and "not readable by this user" in reason and "energy_uj" in reason


# --- NVML: a fake pynvml with two GPUs ----------------------------------------------------------

GPU0 = Properties("Fake H200", 0, 0x19, 0, "aaaa-0")
GPU1 = Properties("Fake H200", 0, 0x3B, 0, "bbbb-1")


def _nvml(supported=True):
    return FakeNvml({"00000000:19:00.0": ("GPU-aaaa-0", 1_000), "00000000:3B:00.0": ("GPU-bbbb-1", 2_500_000)},
                    supported=supported)


def test_nvml_finds_the_gpu_torch_means_by_pci_bus_id():
    # CUDA_VISIBLE_DEVICES=1: torch's cuda:0 is the machine's second GPU, which NVML's index 0 is not.
    counter, reason = nvml.open_nvml(GPU1, _nvml())
    assert reason is None and counter.source == "nvml"
    assert counter.read_j() == pytest.approx(2_500.0)  # millijoules -> joules
    assert nvml.open_nvml(GPU0, _nvml())[0].read_j() == pytest.approx(1.0)


def test_nvml_refuses_a_board_split_into_mig_instances():
    class Mig(FakeNvml):
        NVML_DEVICE_MIG_ENABLE = 1

        def nvmlDeviceGetMigMode(self, handle):
            return (1, 1) if handle == "00000000:3B:00.0" else (0, 0)

    fake = Mig({"00000000:19:00.0": ("GPU-aaaa-0", 1_000), "00000000:3B:00.0": ("GPU-bbbb-1", 2_500_000)})
    counter, reason = nvml.open_nvml(GPU1, fake)
    assert counter is None and "MIG" in reason
    assert nvml.open_nvml(GPU0, fake)[0].read_j() == pytest.approx(1.0)


def test_nvml_falls_back_to_the_uuid():
    class NoPci:
        name, uuid = "Fake H200", "bbbb-1"

    counter, reason = nvml.open_nvml(NoPci(), _nvml())
    assert reason is None and counter.read_j() == pytest.approx(2_500.0)


def test_nvml_without_the_device_or_the_counter_says_why():
    stranger = Properties("Fake H200", 0, 0x99, 0, "cccc-2")
    counter, reason = nvml.open_nvml(stranger, _nvml())
    assert counter is None and "00000000:99:00.0" in reason and "GPU-cccc-2" in reason
    counter, reason = nvml.open_nvml(GPU0, _nvml(supported=False))
    assert counter is None and "Not Supported" in reason


def test_header_readings_come_from_the_gpu_torch_means(monkeypatch):
    """``bench.sysinfo.nvml_readings`` (clocks, power in the header) finds its GPU as the energy meter does:
    under CUDA_VISIBLE_DEVICES=1 torch's cuda:0 is NVML's second GPU, not NVML's index 0."""
    import sys

    import torch

    from bench import sysinfo

    class Readings(FakeNvml):
        NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 0, 1, 0

        def nvmlDeviceGetHandleByIndex(self, index):
            return list(self.gpus)[index]

        def nvmlDeviceGetPowerUsage(self, handle):  # milliwatts: the energy column reused as a marker
            return self.gpus[handle][1]

        nvmlDeviceGetClockInfo = nvmlDeviceGetMaxClockInfo = nvmlDeviceGetEnforcedPowerLimit = (
            lambda self, handle, *kind: 1)
        nvmlDeviceGetTemperature = lambda self, handle, kind: 40  # noqa: E731
        nvmlSystemGetDriverVersion = lambda self: "fake"  # noqa: E731
        nvmlShutdown = lambda self: None  # noqa: E731

    fake = Readings({"00000000:19:00.0": ("GPU-aaaa-0", 1_000), "00000000:3B:00.0": ("GPU-bbbb-1", 2_500_000)})
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: GPU1)
    assert sysinfo.nvml_readings("cuda:0")["power_w"] == pytest.approx(2_500.0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: Properties("x", 0, 0x99, 0, "z"))
    assert "NVML knows no GPU" in sysinfo.nvml_readings("cuda:0")["error"]
