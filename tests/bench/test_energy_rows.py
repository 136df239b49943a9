"""Energy in results: the fields of every row, the header's ``energy`` entry, the report's J/call
column and the energy figure (which ``bench plot`` saves); plus the real NVML counter on a CUDA machine."""

from __future__ import annotations

import io
import json
import time

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from bench import energy
from bench.cases import Case
from bench.cli import app
from bench.energy import meter, window
from bench.energy.window import Meter
from bench.measure import measure_cell
from bench.sysinfo import environment
from bench.timing import time_call
from tests.plots.synthetic import write_results

runner = CliRunner()


def _cell(device="cpu") -> Case:
    return Case("sa", "sdpa", 1.0, "fp32", 1, 32, 2, device)


class WallCounter:
    """A counter on the real clock: ``watts`` since it was made, updated every ``period_s``."""

    source, scope = "fake", "a counter on the wall clock"

    def __init__(self, watts=50.0, period_s=1e-3, stalled=False):
        self.watts, self.period_s, self.stalled, self.start = watts, period_s, stalled, time.perf_counter()

    def read_j(self) -> float:
        if self.stalled:
            return 0.0
        elapsed = time.perf_counter() - self.start
        return self.watts * (elapsed // self.period_s) * self.period_s


def _with_meter(monkeypatch, counter) -> None:
    monkeypatch.setattr(meter, "open_meter", lambda device: (Meter(counter, counter.period_s), None))
    monkeypatch.setattr(window, "STALL_S", 0.2)


def test_cpu_rows_carry_energy_fields_and_the_header_says_which():
    row = measure_cell(_cell(), min_reps=2, budget_s=0.0)
    header = environment("cpu")["energy"]
    assert row.status == "ok", row.message
    assert header == energy.header("cpu")
    assert row.energy_source == header["source"]
    if header["source"] is None:  # as on a VM: no number, and the one reason in the header
        assert header["reason"] and all(getattr(row, f) is None for f in energy.FIELDS)
    else:  # a machine with readable RAPL counters
        assert header["source"] == "rapl" and header["update_period_s"] > 0
        assert row.energy_j_per_call > 0 and row.power_w_mean > 0 and row.energy_window_s >= window.MIN_WINDOW_S


def test_a_row_carries_its_meters_reading(monkeypatch):
    _with_meter(monkeypatch, WallCounter(watts=50.0))
    row = measure_cell(_cell(), min_reps=2, budget_s=0.0)
    assert row.status == "ok", row.message
    assert row.energy_source == "fake" and row.energy_note is None
    assert row.energy_window_s >= window.MIN_WINDOW_S and row.energy_calls >= 1
    assert row.power_w_mean == pytest.approx(50.0, rel=0.05)
    assert row.energy_j_per_call == pytest.approx(row.power_w_mean * row.energy_window_s / row.energy_calls)


def test_a_stalled_counter_leaves_a_note_and_no_number(monkeypatch):
    _with_meter(monkeypatch, WallCounter(stalled=True))
    row = measure_cell(_cell(), min_reps=2, budget_s=0.0)
    assert row.status == "ok" and row.energy_source == "fake"
    assert row.energy_j_per_call is None and row.power_w_mean is None and "did not change" in row.energy_note


def test_header_names_the_counter_and_its_period(monkeypatch):
    _with_meter(monkeypatch, WallCounter(period_s=2e-3))
    entry = energy.header("cpu")
    assert entry["source"] == "fake" and entry["update_period_s"] == 2e-3 and "wall clock" in entry["scope"]
    monkeypatch.setattr(meter, "open_meter", lambda device: (None, "no counter here"))
    assert energy.header("cpu") == {"source": None, "reason": "no counter here"}


@pytest.fixture
def with_energy(tmp_path):
    """Synthetic results whose ok rows drew 100 W while they ran: J/call = 0.1 x median ms."""
    path = write_results(tmp_path / "r.jsonl", seconds=(10, 50, 100), not_measured={("sa:naive", 100): "oom"})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line in lines:
        if line.get("status") == "ok":
            line.update(energy_source="nvml", energy_j_per_call=0.1 * line["median_ms"], power_w_mean=100.0)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _invoke(*args) -> str:
    result = runner.invoke(app, list(map(str, args)))
    assert result.exit_code == 0, result.output
    return result.stdout  # stderr names each file's code (bench.provenance)


def test_report_gives_joules_per_call_in_every_format(with_energy):
    table = pd.read_csv(io.StringIO(_invoke("report", with_energy, "--format", "csv")))
    ok = table[table["status"] == "ok"]
    assert ok["energy_j_per_call"].tolist() == pytest.approx((0.1 * ok["median_ms"]).tolist())
    assert table.loc[table["status"] == "oom", "energy_j_per_call"].isna().all()
    cells = json.loads(_invoke("report", with_energy, "--format", "json"))["cells"]
    assert {row["energy_source"] for row in cells} == {"nvml", None}
    kda_10 = 0.1 * next(row["median_ms"] for row in cells if row["label"] == "kda:torch" and row["seconds"] == 10)
    for fmt in ("markdown", "table"):
        out = _invoke("report", with_energy, "--format", fmt)
        assert "J/call" in out and f"{kda_10:.3g}" in out


def test_plot_draws_the_energy_figure_only_where_rows_carry_energy(with_energy, tmp_path):
    from plots.figures import all_figures

    assert "energy" in [name for name, _ in all_figures([with_energy])]
    plain = write_results(tmp_path / "plain.jsonl", seconds=(10, 50))
    assert "energy" not in [name for name, _ in all_figures([plain])]


def test_energy_figure_draws_each_mixers_joules_and_watts(with_energy):
    from plots.energy import energy_figure
    from plots.load import load_cells

    cells = load_cells(with_energy)
    figure = energy_figure(cells)
    joules, watts = figure.axes[:2]
    lines = {line.get_label(): line for line in joules.get_lines()}
    kda = cells[(cells["label"] == "kda:torch")].sort_values("seconds")
    assert list(lines["kda:torch"].get_ydata()) == pytest.approx((0.1 * kda["median_ms"]).tolist())
    # The oom cell of sa:naive has no reading: two points, not three.
    assert len(lines["sa:naive"].get_xdata()) == 2
    assert all(set(line.get_ydata()) == {100.0} for line in watts.get_lines())
    assert "NVML" in figure.get_suptitle()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="reads NVML's energy counter of a CUDA GPU; no GPU here")
def test_nvml_counter_of_the_cuda_device_reads_real_energy():
    import pynvml

    found, reason = meter.open_meter("cuda:0")
    assert found is not None, reason
    assert found.counter.source == "nvml" and 1e-4 < found.period_s < 1.0
    # The handle is the GPU torch calls cuda:0, whatever CUDA_VISIBLE_DEVICES says.
    info = pynvml.nvmlDeviceGetPciInfo(found.counter.handle)
    properties = torch.cuda.get_device_properties(0)
    assert (info.domain, info.bus, info.device) == (properties.pci_domain_id, properties.pci_bus_id,
                                                    properties.pci_device_id)
    a = torch.randn(4096, 4096, device="cuda")
    timing = time_call(lambda: a @ a, "cuda:0", budget_s=0.2)
    fields = energy.row_fields(lambda: a @ a, "cuda:0", median_ms=timing.median_ms)
    assert fields["energy_source"] == "nvml", fields["energy_note"]
    # A busy GPU board draws tens to hundreds of watts (an H200's limit is 700 W).
    assert 20 < fields["power_w_mean"] < 1500 and fields["energy_j_per_call"] > 0
    assert fields["energy_window_s"] >= window.PERIODS * found.period_s


def test_no_energy_switches_the_meter_off_for_the_header_and_the_rows(monkeypatch, tmp_path):
    monkeypatch.setenv(meter.SWITCH, "1")  # restored after the test: --no-energy sets it in this process
    monkeypatch.setattr(meter, "open_rapl", lambda: (WallCounter(), None))
    monkeypatch.setattr(window, "STALL_S", 0.2)
    meter.open_meter.cache_clear()
    try:
        assert meter.open_meter("cpu")[0] is not None  # without the switch the (fake) package counter is read
        meter.open_meter.cache_clear()
        out = tmp_path / "r.jsonl"
        _invoke("sweep", "--mixers", "sa:sdpa", "--seconds", "1", "--hidden", "32", "--heads", "2", "--reps", "2",
                "--budget", "0", "--no-isolate", "--no-energy", "--device", "cpu", "--out", out)
        header, row = (json.loads(line) for line in out.read_text().splitlines())
        assert header["energy"]["source"] is None and "--no-energy" in header["energy"]["reason"]
        assert row["status"] == "ok" and all(row[field] is None for field in energy.FIELDS)
    finally:
        meter.open_meter.cache_clear()
