"""The gates' rules without timing anything: budget lookup order, absolute GPU budgets, verdicts."""

from pathlib import Path

import pytest
import torch

from bench.results import read_rows
from tests.perf.gates import chosen_profile, device_classes, find_budget, judge, load_budgets, suggest

BUDGETS = """
[profiles.ci]
hidden = 64
heads = 2
seconds = [2, 8]
rounds = 5
matmul = 128

[budgets.cpu.ci]
"kda:torch" = { 2 = 3.0, 8 = 9.5 }

[budgets.cuda.ci]
"kda:fla" = { 2 = 1.5 }

[budgets."NVIDIA H100 80GB HBM3".ci]
"kda:fla" = { 2 = { ms = 0.25 } }
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "budgets.toml"
    path.write_text(BUDGETS)
    return load_budgets(path)


def test_named_gpu_first_then_device_class(config):
    h100 = ["NVIDIA H100 80GB HBM3", "cuda"]
    assert find_budget(config, h100, "ci", "kda:fla", 2) == ("NVIDIA H100 80GB HBM3", {"ms": 0.25})
    assert find_budget(config, ["NVIDIA L4", "cuda"], "ci", "kda:fla", 2) == ("cuda", 1.5)
    assert find_budget(config, ["cpu"], "ci", "kda:torch", 8.0) == ("cpu", 9.5)
    assert find_budget(config, ["cpu"], "ci", "kda:torch", 4) == ("cpu", None)
    assert find_budget(config, ["cpu"], "full", "kda:torch", 2) == ("cpu", None)


def test_ratio_and_absolute_verdicts():
    ratio = judge(mixer_ms=2.0, matmul_ms=0.5, budget=3.0, spec="kda:torch", seconds=2)
    assert (ratio.passed, ratio.value, ratio.unit) == (False, 4.0, "x matmul")
    assert ratio.message.startswith("over budget: kda:torch at 2 s: 4 x matmul against a budget of 3 x matmul")
    absolute = judge(mixer_ms=0.2, matmul_ms=99.0, budget={"ms": 0.25}, spec="kda:fla", seconds=2)
    assert (absolute.passed, absolute.value, absolute.unit) == (True, 0.2, "ms")


def test_profiles_and_suggestions(config):
    profile = chosen_profile(config, "ci")
    assert (profile.hidden, profile.seconds, profile.matmul) == (64, (2.0, 8.0), 128)
    with pytest.raises(ValueError, match="unknown perf profile 'huge'.*profiles in budgets.toml: ci"):
        chosen_profile(config, "huge")
    assert [suggest(r) for r in (1.01, 5.79, 16.5, 0.0123)] == [3.1, 18, 50, 0.037]


def test_the_repository_budgets_parse_and_cover_sa():
    config = load_budgets()
    profile = chosen_profile(config, "ci")
    for seconds in profile.seconds:
        for spec in ("sa:sdpa", "sa:naive"):
            assert isinstance(find_budget(config, ["cpu"], "ci", spec, seconds)[1], float | int)


H200_RUN = Path(__file__).resolve().parents[2] / "results" / "runs" / "nvidia-h200-2026-12-04"


def _h200_medians() -> dict:
    """(spec, seconds) -> median ms of the H200 run's ok fp32 forward cells at the full profile's sizes."""
    medians = {}
    for name in ("paper-fp32.jsonl", "paper-fp32-rest.jsonl"):
        for row in read_rows(H200_RUN / name):
            if row["status"] == "ok" and (row["hidden"], row["heads"], row["batch"]) == (1024, 4, 1):
                medians[f"{row['mixer']}:{row['kernel']}", row["seconds"]] = row["median_ms"]
    return medians


def test_the_h200_budgets_are_three_times_the_runs_medians():
    config, medians = load_budgets(), _h200_medians()
    full, ci = config["budgets"]["NVIDIA H200"]["full"], config["budgets"]["NVIDIA H200"]["ci"]
    assert set(full) == set(ci) == {"sa:sdpa", "sa:naive", "kda:fla", "retnet:fla", "lightnet:fla"}
    for spec, budgets in full.items():
        for seconds in chosen_profile(config, "full").seconds:
            assert budgets[f"{seconds:g}"] == {"ms": suggest(medians[spec, seconds])}
        # ci sizes are not in the run: every ci length gets the full profile's 10 s budget (an upper bound).
        assert {budget["ms"] for budget in ci[spec].values()} == {budgets["10"]["ms"]}


def test_an_h200_finds_its_own_budgets_and_a_cpu_keeps_its_own(monkeypatch):
    config = load_budgets()
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    classes = device_classes("cuda")
    assert classes == ["NVIDIA H200", "cuda"]
    assert find_budget(config, classes, "full", "kda:fla", 10) == ("NVIDIA H200", {"ms": 7.7})
    assert find_budget(config, classes, "ci", "sa:sdpa", 2) == ("NVIDIA H200", {"ms": 0.66})
    assert device_classes("cpu") == ["cpu"]
    assert find_budget(config, ["cpu"], "ci", "sa:sdpa", 2) == ("cpu", 3.1)
    assert find_budget(config, ["cpu"], "full", "sa:sdpa", 10) == ("cpu", None)
