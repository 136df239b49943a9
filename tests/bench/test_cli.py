import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

from bench.cli import app
from bench.results import read_rows

runner = CliRunner()
TINY = ["--hidden", "32", "--heads", "2", "--reps", "2", "--budget", "0"]


def _invoke(*args):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seconds", "-5"], "seconds must be positive"),
        (["--seconds", "ten"], "comma-separated float"),
        (["--dtype", "fp8"], "unknown dtype 'fp8'"),
        (["--reps", "0"], "reps must be >= 1"),
        (["--mixers", "nope"], "known mixers: sa"),
        (["--mixers", "sa:flash"], "its kernels: sdpa, naive"),
        (["--preset", "fast"], "unknown preset 'fast'"),
        (["--device", "tpu"], "use cpu, cuda"),
    ],
)
def test_bad_values_fail_with_one_clear_line(tmp_path, args, message):
    result = _invoke("sweep", "--out", str(tmp_path / "r.jsonl"), *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "r.jsonl").exists()  # failed before any work


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_without_cuda_fails_clearly(tmp_path):
    result = _invoke("sweep", "--device", "cuda", "--out", str(tmp_path / "r.jsonl"))
    assert result.exit_code == 2
    assert "no usable CUDA device" in " ".join(result.output.split())


def test_sweep_then_report(tmp_path):
    out = tmp_path / "r.jsonl"
    result = _invoke("sweep", "--mixers", "sa:naive,sa:sdpa", "--seconds", "1,2", "--out", str(out),
                     "--no-isolate", *TINY)
    assert result.exit_code == 0, result.output
    header = json.loads(out.read_text().splitlines()[0])
    assert header["kind"] == "header" and header["torch"] == torch.__version__
    assert isinstance(header["command"], str)  # CliRunner keeps pytest's argv; the kill -9 test checks it
    rows = read_rows(out)
    assert [(r["kernel"], r["seconds"], r["status"]) for r in rows] == [
        ("naive", 1, "ok"), ("naive", 2, "ok"), ("sdpa", 1, "ok"), ("sdpa", 2, "ok")]
    report = _invoke("report", str(out))
    # Two cells, and one line in the first-call table.
    assert report.exit_code == 0 and report.output.count("sa:naive") == 3


def test_report_of_missing_file(tmp_path):
    result = _invoke("report", str(tmp_path / "none.jsonl"))
    assert result.exit_code == 2 and "no such results file" in result.output


def test_env_as_json():
    result = _invoke("env", "--as-json")
    info = json.loads(result.output)
    assert info["torch"] == torch.__version__ and info["device"] in ("cpu", "cuda")


@pytest.mark.slow
def test_kill_9_then_rerun_gives_exactly_one_row_per_cell(tmp_path):
    out = tmp_path / "r.jsonl"
    command = [sys.executable, "-m", "bench.cli", "sweep", "--mixers", "sa:naive,sa:sdpa",
               "--seconds", "1,2,3,4,5,6", "--out", str(out), *TINY]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not out.exists() or len(read_rows(out)) < 2):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the sweep and its worker, mid-sweep
    process.wait()
    done_before = len(read_rows(out))
    assert 2 <= done_before < 12
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    rows = read_rows(out)
    keys = [(r["kernel"], r["seconds"]) for r in rows]
    assert len(keys) == 12 and len(set(keys)) == 12
    assert all(r["status"] == "ok" for r in rows)
    headers = read_rows(out, "header")
    assert len(headers) == 2 and headers[1]["resumed"] and "sweep --mixers sa:naive,sa:sdpa" in headers[1]["command"]


def test_train_and_stream_rows_for_every_mixer(tmp_path):
    import mixers.stream

    out = tmp_path / "r.jsonl"
    result = _invoke("sweep", "--mode", "train,stream", "--seconds", "0.5", "--out", str(out), "--no-isolate",
                     "--hidden", "32", "--heads", "2", "--reps", "1", "--budget", "0")
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    specs = {f"{r['mixer']}:{r['kernel']}" for r in rows}
    assert {spec.split(":")[0] for spec in specs} == set(mixers.names())
    train = [r for r in rows if r["mode"] == "train"]
    assert train and all(r["status"] == "ok" for r in train), [r["message"] for r in train if r["status"] != "ok"]
    streamable = {f"{n}:{k}" for n, k in mixers.stream.supported()}
    for r in rows:
        if r["mode"] == "stream" and f"{r['mixer']}:{r['kernel']}" in streamable:
            assert r["status"] == "ok" and r["state_bytes"] > 0 and r["causal"], r
    assert all(r["sdpa_backend"] == "flash" for r in rows if r["kernel"] == "sdpa")


@pytest.mark.parametrize("args, message", [
    (["--cuda-graphs"], "needs --device cuda"),
    (["--optimizer-step"], "needs --mode train"),
    (["--mode", "stream", "--bidirectional"], "--bidirectional has none"),
    (["--mode", "backward"], "unknown mode 'backward'"),
    (["--combine", "mean"], "unknown combine 'mean'"),
])
def test_new_options_fail_with_one_line(tmp_path, args, message):
    result = _invoke("sweep", "--out", str(tmp_path / "r.jsonl"), *args)
    assert result.exit_code == 2 and message in " ".join(result.output.split())
