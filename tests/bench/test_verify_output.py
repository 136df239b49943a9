"""``bench verify``'s output: streamed lines, JSON lines with a header, time limits, tolerance by precision."""

from __future__ import annotations

import io
import json
import time

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

import bench.verify
from bench import precision
from bench.cli import app
from bench.verify import TF32_TOLERANCE, TOLERANCE, Check, Planned, check_pair, pair_precision, tolerance
from bench.verify_output import AUTOTUNE_NOTE, ChecksFile, line, status_text, stream, summary

PLANNED = [Planned("sa", "naive", "sdpa", n) for n in (33, 45, 77)]


pytestmark = pytest.mark.usefixtures("restore_precision")


def fake_check(seen: list, buffer: io.StringIO | None = None, sleep_s: float = 0.0):
    """A check_pair that records what had been printed when it started."""
    def check(name, kernel, reference, length, *args, **kwargs):
        seen.append(buffer.getvalue() if buffer is not None else "")
        time.sleep(sleep_s)
        return Check(name, kernel, reference, length, 1e-7, 1.0, 1e-7, 1e-4, True, precision="ieee", seconds=sleep_s)
    return check


def test_out_file_is_json_lines_with_a_header(tmp_path):
    out = tmp_path / "v.jsonl"
    result = CliRunner().invoke(app, ["verify", "--mixers", "sa", "--out", str(out), "--no-interpret",
                                      "--device", "cpu", "--hidden", "32"])
    assert result.exit_code == 0, result.output
    header, *checks = [json.loads(line) for line in out.read_text().splitlines()]
    assert header["kind"] == "header" and header["device"] == "cpu" and header["torch"] == torch.__version__
    assert header["fp32_precision_torch"] == "ieee" and header["lengths"] == [45, 77]
    assert [(c["kind"], c["kernel"], c["length"], c["passed"], c["precision"]) for c in checks] == [
        ("check", "naive", 45, True, "ieee"), ("check", "naive", 77, True, "ieee")]


def test_each_check_is_printed_before_the_next_starts(monkeypatch):
    buffer, seen = io.StringIO(), []
    monkeypatch.setattr(bench.verify, "check_pair", fake_check(seen, buffer))
    checks, left = stream(PLANNED, 32, 2, "cpu", "fp32", Console(file=buffer, width=200))
    assert [s.count("naive vs sdpa") for s in seen] == [0, 1, 2] and left == []
    assert buffer.getvalue().count("naive vs sdpa") == 3


def test_time_limit_stops_between_checks_and_lists_the_rest(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(bench.verify, "check_pair", fake_check(seen, sleep_s=0.3))
    out = ChecksFile(tmp_path / "v.jsonl", {"device": "cpu"})
    checks, left = stream(PLANNED, 32, 2, "cpu", "fp32", Console(file=io.StringIO()), out, time_limit_s=0.1)
    assert len(seen) == len(checks) == 1 and left == PLANNED[1:]
    kinds = [json.loads(line)["kind"] for line in out.path.read_text().splitlines()]
    assert kinds == ["header", "check", "not_run", "not_run"]
    assert "not run (2): sa naive vs sdpa at 45, sa naive vs sdpa at 77" in summary(checks, left, 0.1)


def test_cli_time_limit_lists_what_did_not_run(monkeypatch):
    monkeypatch.setattr(bench.verify, "check_pair", fake_check([], sleep_s=0.3))
    result = CliRunner().invoke(app, ["verify", "--mixers", "sa", "--lengths", "33,45", "--time-limit", "0.1",
                                      "--no-interpret", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "1 checks: 1 pass" in result.output and "not run (1): sa naive vs sdpa at 45" in result.output


def test_autotune_is_announced_once_per_fla_mixer_on_cuda():
    seen: set[str] = set()
    fla = Planned("kda", "torch", "fla", 45)
    assert AUTOTUNE_NOTE in status_text(fla, "cuda", seen)
    assert AUTOTUNE_NOTE not in status_text(Planned("kda", "torch", "fla", 77), "cuda", seen)
    assert AUTOTUNE_NOTE not in status_text(Planned("retnet", "torch", "reference", 45), "cuda", seen)
    assert AUTOTUNE_NOTE not in status_text(Planned("gla", "torch", "fla", 45), "cpu", set())


def test_the_status_line_shows_while_a_check_runs(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(bench.verify, "check_pair", fake_check([], sleep_s=0.3))
    stream([Planned("kda", "torch", "fla", 45)], 32, 2, "cuda", "fp32",
           Console(file=buffer, force_terminal=True, width=200))
    assert "kda: torch vs fla at 45 frames" in buffer.getvalue() and "autotunes" in buffer.getvalue()


def test_tolerance_follows_the_precision():
    assert tolerance("fp32", "ieee") == TOLERANCE["fp32"] == 1e-4
    assert tolerance("fp32", "tf32") == tolerance("fp32", "mixed") == TF32_TOLERANCE
    assert tolerance("bf16", "tf32") == TOLERANCE["bf16"]


def test_pair_precision_on_cuda_settings(monkeypatch):
    precision.apply("ieee")  # sets TRITON_F32_DEFAULT: no GPU needed to read it back
    assert pair_precision("retnet", "torch", "fla", "cuda") == "ieee"
    monkeypatch.setenv(precision.TRITON_ENV, "tf32")  # Triton at its default, PyTorch at its own
    assert pair_precision("retnet", "torch", "fla", "cuda") == "mixed"
    assert pair_precision("sa", "naive", "sdpa", "cuda") == "ieee"
    assert pair_precision("sa", "naive", "sdpa", "cpu") == "ieee"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: fla's kernels at the GPU's own precision")
def test_fla_at_its_default_tf32_passes_at_the_tf32_tolerance():
    if torch.cuda.get_device_capability()[0] < 8:
        pytest.skip("TF32 needs compute capability 8.0 or newer")
    check = check_pair("retnet", "torch", "fla", 77, 128, 2, "cuda")
    assert check.precision == "mixed" and check.tolerance == TF32_TOLERANCE
    assert check.passed, check


def test_an_output_only_check_prints_its_line():
    """fox:flex on CPU has no backward: its check carries no gradient error, and its line says so."""
    check = Check("fox", "flex", "reference", 45, 6.9e-7, 0.8, None, 1e-4, True,
                  "output only: flex has no backward on cpu", precision="ieee", seconds=1.0)
    text = line(check)
    assert "err 6.90e-07" in text and "grad    -    " in text and "output only" in text
