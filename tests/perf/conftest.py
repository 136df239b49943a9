"""Fixtures of the regression gates: budgets, the chosen profile and device, and a benchmark that measures.

pyproject's ``addopts`` has ``--benchmark-disable`` so that unit tests using the ``benchmark``
fixture run their function once. The gates need numbers whatever that flag says, so
``gate_benchmark`` turns measuring back on for its own test; pytest-benchmark still stores and
compares those numbers with its usual options (``--benchmark-autosave``, ``--benchmark-compare``).
"""

from __future__ import annotations

import pytest

from tests.perf.gates import chosen_device, chosen_profile, device_classes, load_budgets


@pytest.fixture(scope="session")
def budgets() -> dict:
    return load_budgets()


@pytest.fixture(scope="session")
def profile(budgets):
    return chosen_profile(budgets)


@pytest.fixture(scope="session")
def device() -> str:
    return chosen_device()


@pytest.fixture(scope="session")
def classes(device) -> list[str]:
    return device_classes(device)


@pytest.fixture
def gate_benchmark(benchmark):
    benchmark.disabled = False
    return benchmark
