"""The gate is not decoration: the same mixer passes as it is and fails when a fixture makes it do more work."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mixers
from bench.cases import frames
from tests.perf.gates import find_budget, judge, measure

pytestmark = pytest.mark.perf
SPEC = "sa:sdpa"
EXTRA_WORK = 5
"""Forward passes per call when slowed: far beyond the 3x headroom budgets carry."""


class Repeated(nn.Module):
    """The mixer run ``times`` times per call: what an accidental recomputation would cost."""

    def __init__(self, module: nn.Module, times: int):
        super().__init__()
        self.module, self.times = module, times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.times - 1):
            self.module(x)
        return self.module(x)


@pytest.fixture(params=[1, EXTRA_WORK], ids=["as-is", f"slowed-{EXTRA_WORK}x"])
def sdpa(request, profile, device):
    module = mixers.build("sa", profile.hidden, profile.heads, kernel="sdpa", device=device).to(device).eval()
    return Repeated(module, request.param), request.param == 1


def test_gate_passes_the_mixer_and_fails_it_slowed(gate_benchmark, sdpa, budgets, profile, device, classes):
    module, as_is = sdpa
    seconds = profile.seconds[-1]
    device_class, budget = find_budget(budgets, classes, profile.name, SPEC, seconds)
    if budget is None:
        pytest.skip(f"no budget for {SPEC} at {seconds:g} s on {device_class} (profile {profile.name})")
    x = torch.randn(1, frames(seconds), profile.hidden, device=device)
    verdict = judge(*measure(gate_benchmark, module, x, profile, device), budget, SPEC, seconds)
    assert verdict.passed is as_is, verdict.message
    if not as_is:
        assert verdict.message.startswith(f"over budget: {SPEC} at {seconds:g} s")
