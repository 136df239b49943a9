"""The gates' rules without timing anything: budget lookup order, absolute GPU budgets, verdicts."""

import pytest

from tests.perf.gates import chosen_profile, find_budget, judge, load_budgets, suggest

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
