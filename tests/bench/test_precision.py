"""fp32 precision: detecting it, setting it (here and in a spawned worker), recording it, reporting it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from bench import precision
from bench.cases import Case
from bench.cli import app
from bench.results import Row
from bench.runner import _Worker
from plots.precision import notes

FAKE_PIN = SimpleNamespace(value="tf32")  # what fla's tl.constexpr looks like to fla_pinned


pytestmark = pytest.mark.usefixtures("restore_precision")


def stamped(case, min_reps, budget_s):
    """Measure function for the worker: what the spawned process has in force, as if on CUDA."""
    return precision.stamp(Row.for_case(case, "ok"), "cuda")


def test_defaults_on_cpu(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert precision.fields("cpu") == {"fp32_precision": None, "fp32_precision_torch": "ieee",
                                       "fp32_precision_triton": None}
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # NumPy computes the interpreter's dots in fp32
    assert precision.triton_precision("cpu") == "ieee"


@pytest.mark.parametrize("choice", ["ieee", "tf32"])
def test_apply_sets_torch_and_triton(choice):
    assert precision.apply(choice.upper()) == choice
    assert precision.torch_precision("cuda") == choice
    assert precision.triton_precision("cuda") == choice  # from TRITON_F32_DEFAULT, no GPU asked
    assert torch.backends.cudnn.allow_tf32 is (choice == "tf32")
    assert precision.torch_precision("cpu") == "ieee"  # oneDNN is left alone
    assert precision.requested() == choice


def test_bad_choice():
    with pytest.raises(ValueError, match="choose from ieee, tf32"):
        precision.apply("fp16")


def test_triton_reads_the_variable_at_compile_time_and_keys_its_cache_on_it(monkeypatch):
    from triton import knobs
    from triton._C.libtriton import get_cache_invalidating_env_vars

    monkeypatch.setenv(precision.TRITON_ENV, "ieee")
    assert knobs.language.fp32_default == "ieee"
    assert get_cache_invalidating_env_vars().get(precision.TRITON_ENV) == "ieee"


def test_fla_sources_pin_tf32_where_the_table_says():
    root = Path(importlib.util.find_spec("fla").origin).parent  # fla's files, without importing fla
    for module, constant in precision.FLA_PINNED_TF32.values():
        source = (root.parent / (module.replace(".", "/") + ".py")).read_text()
        assert f"{constant} = tl.constexpr('tf32')" in source


def test_pinned_tf32_over_an_ieee_default_is_mixed(monkeypatch):
    monkeypatch.setitem(precision.FLA_PINNED_TF32, "fake", (__name__, "FAKE_PIN"))
    precision.apply("ieee")
    assert precision.fields("cuda", "fake", "fla")["fp32_precision_triton"] == "mixed"
    assert precision.fields("cuda", "fake", "torch")["fp32_precision_triton"] == "ieee"
    precision.apply("tf32")
    assert precision.fields("cuda", "fake", "fla")["fp32_precision_triton"] == "tf32"


def test_effective_precision_of_a_cell():
    assert precision.effective("fla", "ieee", "tf32") == "mixed"
    assert precision.effective("fla", "tf32", "tf32") == "tf32"
    assert precision.effective("sdpa", "ieee", "tf32") == "ieee"
    assert precision.effective("torch", "ieee", None) == "ieee"


@pytest.mark.slow  # a spawned worker imports torch: ~5 s on 2 shared cores
def test_the_request_reaches_a_spawned_worker():
    precision.apply("tf32")  # PyTorch's default is ieee: a worker that ignored the request would say so
    case = Case("sa", "sdpa", 10.0, "fp32", 1, 32, 2, "cpu")
    worker = _Worker(stamped)
    try:
        row = worker.run(case, 1, 0.0, 120, on_phase=lambda event: None)
    finally:
        worker.close()
    assert (row.fp32_precision, row.fp32_precision_torch, row.fp32_precision_triton) == ("tf32", "tf32", "tf32")


def test_sweep_rows_carry_the_fields(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    monkeypatch.setattr("bench.commands.sweep.run_sweep", lambda plan, writer, **k: _one_row(plan, writer))
    result = CliRunner().invoke(app, ["sweep", "--mixers", "sa:sdpa", "--seconds", "10", "--device", "cpu",
                                      "--fp32-precision", "ieee", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["kind"] == "header" and lines[0]["fp32_precision"] == "ieee"
    assert (lines[1]["fp32_precision"], lines[1]["fp32_precision_torch"]) == ("ieee", "ieee")


def _one_row(plan, writer):
    from bench.runner import run_sweep
    from tests.bench.fakes import ok

    return run_sweep(plan, writer, measure=ok, isolate=False)


def test_sweep_bad_precision_is_one_line():
    result = CliRunner().invoke(app, ["sweep", "--fp32-precision", "half", "--device", "cpu"])
    assert result.exit_code == 2
    assert result.output.strip() == "bench: error: unknown fp32 precision 'half'; choose from ieee, tf32"


def test_sweep_refuses_to_mix_precisions_in_one_file(tmp_path):
    out = tmp_path / "r.jsonl"
    row = {**Row.for_case(Case("sa", "sdpa", 10.0, "fp32", 1, 32, 2, "cpu"), "ok").__dict__,
           "fp32_precision_torch": "tf32", "fp32_precision_triton": None}
    out.write_text(json.dumps(row) + "\n")
    result = CliRunner().invoke(app, ["sweep", "--mixers", "sa:sdpa", "--seconds", "10", "--device", "cpu",
                                      "--out", str(out)])
    assert result.exit_code == 2 and "torch=tf32" in result.output and "another --out" in result.output


def _cells(precisions: dict) -> pd.DataFrame:
    rows = [dict(mixer=m, kernel=k, label=f"{m}:{k}", dtype="fp32", device="cuda", device_name="GPU", batch=1,
                 hidden=1024, heads=4, mode="forward", options="", fp32_precision_torch=t, fp32_precision_triton=tr)
            for (m, k), (t, tr) in precisions.items()]
    return pd.DataFrame(rows)


def test_report_notes_mixed_precisions_only_when_they_differ():
    mixed = _cells({("sa", "sdpa"): ("ieee", "tf32"), ("kda", "fla"): ("ieee", "tf32")})
    (line,) = notes(mixed)
    assert "different matmul precisions" in line and "ieee: sa:sdpa" in line and "mixed: kda:fla" in line
    assert notes(_cells({("sa", "sdpa"): ("tf32", "tf32"), ("kda", "fla"): ("tf32", "tf32")})) == []


def test_report_notes_unrecorded_cuda_rows():
    (line,) = notes(_cells({("sa", "sdpa"): (None, None)}))
    assert "not recorded for sa:sdpa" in line
