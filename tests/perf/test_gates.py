"""Regression gates: every registered mixer, at the profile's lengths, within its budget.

Budgets live in ``bench/budgets.toml``; how to run, store history and update budgets is in the
README ("Figures, reports and regression gates"). A mixer without a budget is measured and then
skipped with the entry to add, so a new mixer never passes unseen.
"""

from __future__ import annotations

import pytest
import torch

import mixers
from bench.cases import default_mixers, frames
from tests.perf.gates import chosen_device, chosen_profile, find_budget, judge, load_budgets, measure, suggest

pytestmark = pytest.mark.perf


def pytest_generate_tests(metafunc):
    if {"spec", "seconds"} <= set(metafunc.fixturenames):
        device, profile = chosen_device(), chosen_profile(load_budgets())
        specs = []
        for entry in default_mixers():
            name, kernel = mixers.parse_spec(entry)
            specs.append(f"{name}:{mixers.resolve_kernel(name, kernel, device)}")
        metafunc.parametrize("spec", specs)
        metafunc.parametrize("seconds", profile.seconds, ids=[f"{s:g}s" for s in profile.seconds])


def test_mixer_within_budget(gate_benchmark, spec, seconds, budgets, profile, device, classes):
    name, kernel = spec.split(":")
    gate_benchmark.group = f"{profile.name}-{seconds:g}s"
    module = mixers.build(name, profile.hidden, profile.heads, kernel=kernel, device=device).to(device).eval()
    x = torch.randn(1, frames(seconds), profile.hidden, device=device)
    mixer_ms, matmul_ms = measure(gate_benchmark, module, x, profile, device)
    device_class, budget = find_budget(budgets, classes, profile.name, spec, seconds)
    if budget is None:
        pytest.skip(f"no budget for {spec} at {seconds:g} s ({device_class}, profile {profile.name}): measured "
                    f"{mixer_ms / matmul_ms:.3g} x matmul; add \"{spec}\" = {{ {seconds:g} = "
                    f"{suggest(mixer_ms / matmul_ms)} }} under [budgets.{device_class}.{profile.name}]")
    verdict = judge(mixer_ms, matmul_ms, budget, spec, seconds)
    gate_benchmark.extra_info.update(budget=verdict.limit, budget_unit=verdict.unit, device_class=device_class)
    assert verdict.passed, verdict.message
