"""fla kernels' own activation models (``mixers.fla_memory``) against measurements.

1. The H200 run (2026-12-04): every ok ``fla`` row at 100 s and longer, its CUDA-allocator peak
   above weights and input (``peak_above_bytes``, what ``bench report`` compares) within 15% of
   ``mixers.cost(..., kernel="fla")``.
2. CPU, where no GPU row exists: the tensors fla's own Python wrappers make, counted with Triton's
   launches skipped (``fla_allocations``), within 3% of the model, at an odd length, fp32 and bf16.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import mixers
from mixers import fla_memory
from tests.mixers.fla_allocations import forward_peak

H200 = Path(__file__).parents[2] / "results" / "runs" / "nvidia-h200-2026-12-04"
DTYPE_BYTES = {"fp32": 4, "bf16": 2}


def _h200_rows() -> list[dict]:
    rows = []
    for path in sorted(H200.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row.get("kind") == "cell" and row["kernel"] == "fla" and row["status"] == "ok" and row["seconds"] >= 100:
                rows.append(row)
    return rows


def test_h200_files_hold_the_three_measured_fla_mixers():
    # Guards the next test against passing on an empty or partial copy of the run.
    seen = {(row["mixer"], row["seconds"]) for row in _h200_rows()}
    assert seen == {(m, s) for m in ("retnet", "kda", "lightnet") for s in (100.0, 200.0, 300.0, 400.0)}


@pytest.mark.parametrize("row", _h200_rows(), ids=lambda r: f"{r['mixer']}-{r['seconds']:g}s-{r['dtype']}")
def test_model_within_15_percent_of_h200_peak(row):
    predicted = mixers.cost(row["mixer"], row["frames"], row["hidden"], row["heads"], row["batch"],
                            DTYPE_BYTES[row["dtype"]], kernel="fla").activation_bytes
    assert abs(predicted / row["peak_above_bytes"] - 1) < 0.15, (predicted, row["peak_above_bytes"])


def test_fla_models_are_not_the_twins():
    # RetNet's per-chunk states (313 chunks x 4 heads x 256 x 512 fp32 at 400 s) are in fla's model only.
    fla = mixers.cost("retnet", 19999, 1024, 4, kernel="fla").activation_bytes
    twin = mixers.cost("retnet", 19999, 1024, 4, kernel="torch").activation_bytes
    assert fla > 313 * 4 * 256 * 512 * 4 > 5 * twin


@pytest.mark.parametrize("name", ["retnet", "lightnet", "gsa", "fox", "kda", "gla", "deltanet", "gated_deltanet",
                                  "hgrn2", "rwkv7", "mamba2"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_model_matches_fla_wrappers_allocations_on_cpu(name, dtype):
    pytest.importorskip("fla")
    if name == "deltanet" and dtype == torch.float32:
        pytest.skip("fla 0.6's chunk_delta_rule refuses fp32 (it asserts bf16 / fp16)")
    length, hidden = 333, 256  # T > 64 (chunk mode), not a multiple of 64
    layer = mixers.build(name, hidden, 4, kernel="fla", device="cpu").eval().to(dtype)
    x = torch.randn(1, length, hidden, dtype=dtype)
    counted = forward_peak(lambda: layer(x))
    predicted = mixers.cost(name, length, hidden, 4, 1, x.element_size(), kernel="fla").activation_bytes
    assert abs(predicted / counted - 1) < 0.03, (predicted, counted)


def test_timeline_peak_follows_order_of_frees():
    a = fla_memory.timeline.Timeline().alloc(x=10, y=5).free("x").alloc(z=8)
    b = fla_memory.timeline.Timeline().alloc(x=10, y=5, z=8)
    assert (a.peak, b.peak) == (15, 23)


def test_sweep_precheck_and_stored_prediction_use_the_kernels_own_model():
    from bench.cases import Case
    from bench.measure import prediction_fields
    from bench.modes.cell import needed_bytes, predict

    case = Case("retnet", "fla", 400.0, "fp32", 1, 1024, 4, "cuda")
    cost = predict(case)
    assert cost.activation_bytes == fla_memory.retnet(1, case.frames, 1024, 4, 4)
    assert prediction_fields(cost)["predicted_activation_bytes"] == cost.activation_bytes
    token = case.frames * 1024 * 4
    assert needed_bytes(case, cost) == cost.weight_bytes + token + cost.activation_bytes
    twin = predict(Case("retnet", "torch", 400.0, "fp32", 1, 1024, 4, "cuda"))
    assert twin.activation_bytes < cost.activation_bytes / 5
