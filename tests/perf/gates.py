"""Regression gates: a mixer's forward time against a budget from ``bench/budgets.toml``.

A budget is a ratio to a calibration operation timed in the same run (a dense fp32 matmul), so
one number holds on machines of different speed; named GPUs may instead have absolute budgets in
milliseconds. Both the mixer and the matmul run on one intra-op thread and are judged by their fastest
repetition: on a shared machine other processes only ever add time, so the minimum is the
statistic least moved by them. The calibration is timed just before and just after the mixer and
its fastest call kept.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.timing import time_call

BUDGETS = Path(__file__).resolve().parents[2] / "bench" / "budgets.toml"
PROFILE_ENV, DEVICE_ENV = "MIXBENCH_PERF_PROFILE", "MIXBENCH_PERF_DEVICE"


@dataclass(frozen=True)
class Profile:
    name: str
    hidden: int
    heads: int
    seconds: tuple[float, ...]
    rounds: int
    matmul: int
    """n of the calibration matmul [n, n] @ [n, n]."""


@dataclass(frozen=True)
class Verdict:
    passed: bool
    value: float
    limit: float
    unit: str
    """``x matmul`` for a ratio budget, ``ms`` for an absolute one."""
    message: str


def load_budgets(path: Path = BUDGETS) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)


def chosen_profile(config: dict, name: str | None = None) -> Profile:
    name = name or os.environ.get(PROFILE_ENV, "ci")
    profiles = config.get("profiles", {})
    if name not in profiles:
        raise ValueError(f"unknown perf profile {name!r} (from ${PROFILE_ENV}); profiles in {BUDGETS.name}: "
                         f"{', '.join(profiles)}")
    p = profiles[name]
    return Profile(name, int(p["hidden"]), int(p["heads"]), tuple(float(s) for s in p["seconds"]),
                   int(p["rounds"]), int(p["matmul"]))


def chosen_device() -> str:
    return os.environ.get(DEVICE_ENV) or ("cuda" if torch.cuda.is_available() else "cpu")


def device_classes(device: str) -> list[str]:
    """Where budgets are looked up, most specific first: the GPU's own name, then ``cuda`` or ``cpu``."""
    kind = torch.device(device).type
    return [torch.cuda.get_device_name(torch.device(device)), kind] if kind == "cuda" else [kind]


def find_budget(config: dict, classes: list[str], profile: str, spec: str, seconds: float) -> tuple[str, object]:
    """(device class, budget) for a cell; budget is a float ratio, ``{"ms": x}``, or None when absent."""
    for device_class in classes:
        table = config.get("budgets", {}).get(device_class, {}).get(profile, {})
        if spec in table and f"{seconds:g}" in table[spec]:
            return device_class, table[spec][f"{seconds:g}"]
    return classes[-1], None


def calibration(n: int, device: str, rounds: int) -> Callable[[], object]:
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, generator=generator)
    b = torch.randn(n, n, device=device, generator=generator)
    return lambda: torch.mm(a, b)


def fastest_ms(fn: Callable[[], object], device: str, rounds: int) -> float:
    return time_call(fn, device, budget_s=0.0, min_reps=rounds).min_ms


def judge(mixer_ms: float, matmul_ms: float, budget, spec: str, seconds: float) -> Verdict:
    """Compare one measurement with its budget; the message says how to read and how to update it."""
    if isinstance(budget, dict):
        value, limit, unit = mixer_ms, float(budget["ms"]), "ms"
    else:
        value, limit, unit = mixer_ms / matmul_ms, float(budget), "x matmul"
    passed = value <= limit
    message = (f"{spec} at {seconds:g} s: {value:.3g} {unit} against a budget of {limit:.3g} {unit} "
               f"(mixer {mixer_ms:.3g} ms, calibration matmul {matmul_ms:.3g} ms)")
    return Verdict(passed, value, limit, unit, message if passed else "over budget: " + message)


def suggest(ratio: float, headroom: float = 3.0) -> float:
    """A budget for a new entry: ``headroom`` times the measured ratio, rounded up to two digits."""
    value = ratio * headroom
    scale = 10 ** (math.floor(math.log10(value)) - 1)
    return round(math.ceil(value / scale) * scale, 6)


def measure(benchmark, module: torch.nn.Module, x: torch.Tensor, profile: Profile, device: str) -> tuple[float, float]:
    """(fastest mixer call, fastest calibration matmul) in ms; the mixer timed by pytest-benchmark."""
    matmul = calibration(profile.matmul, device, profile.rounds)
    cuda = torch.device(device).type == "cuda"

    def call():
        module(x)
        if cuda:  # pytest-benchmark reads a host clock: wait for the GPU inside the timed call
            torch.cuda.synchronize(device)

    # One intra-op thread: with several, a busy neighbour on a shared machine stalls every thread
    # barrier and timings jump tenfold; one thread also keeps ratios independent of the core count.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        before = fastest_ms(matmul, device, profile.rounds)
        with torch.inference_mode():
            benchmark.pedantic(call, rounds=profile.rounds, warmup_rounds=2, iterations=1)
        after = fastest_ms(matmul, device, profile.rounds)
    finally:
        torch.set_num_threads(threads)
    mixer_ms, matmul_ms = benchmark.stats.stats.min * 1e3, min(before, after)
    benchmark.extra_info.update(profile=profile.name, device=device, mixer_min_ms=mixer_ms,
                                calibration_matmul_n=profile.matmul, calibration_min_ms=matmul_ms,
                                ratio=mixer_ms / matmul_ms)
    return mixer_ms, matmul_ms
