"""Results files written by the harness's own writer from closed-form costs, for tests of figures and reports.

Latency and activation memory follow known power laws, so fits, crossovers and verdicts have
answers computable by hand: latency = a + b * frames**p, activation bytes = c * frames**q.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from bench.cases import Case
from bench.results import ResultsWriter, Row

# label -> (a ms, b ms, p, c bytes, q): SA naive/sdpa quadratic in time, naive also in memory.
LAWS = {
    "sa:naive": (0.05, 2.0e-6, 2.0, 32.0, 2.0),
    "sa:sdpa": (0.05, 1.2e-6, 2.0, 20_000.0, 1.0),
    "kda:torch": (0.30, 2.0e-3, 1.0, 40_000.0, 1.0),
    "fox:torch": (0.10, 4.0e-7, 2.0, 24_000.0, 1.0),
}
SPREAD = 0.02
HIDDEN, HEADS = 256, 4


def latency_ms(label: str, frames: int) -> float:
    a, b, p, _, _ = LAWS[label]
    return a + b * frames**p


def activation_bytes(label: str, frames: int) -> int:
    _, _, _, c, q = LAWS[label]
    return int(c * frames**q)


def write_results(path: Path, labels=tuple(LAWS), seconds=(10, 25, 50, 100, 200), device_name="Test CPU (2 cores)",
                  slower: dict[str, float] | None = None, not_measured: dict[tuple[str, float], str] | None = None,
                  predicted_error: float = 0.0) -> Path:
    """One header and one cell row per (label, seconds); ``slower`` multiplies a label's timings,
    ``not_measured`` turns cells into ``oom`` / ``skipped`` rows, ``predicted_error`` biases predictions."""
    slower, not_measured = slower or {}, not_measured or {}
    writer = ResultsWriter(Path(path))
    writer.write_header({"device": "cpu", "device_name": device_name, "torch": "test", "command": "synthetic"})
    for label in labels:
        mixer, kernel = label.split(":")
        for s in seconds:
            case = Case(mixer, kernel, float(s), "fp32", 1, HIDDEN, HEADS, "cpu")
            activation = activation_bytes(label, case.frames)
            predicted = dict(predicted_activation_bytes=int(activation * (1 + predicted_error)),
                             predicted_flops=1e6 * case.frames, weight_bytes=4 * HIDDEN * HIDDEN * 4)
            status = not_measured.get((label, s))
            if status:
                row = Row.for_case(case, status, message=f"synthetic {status}",
                                   **(predicted if status == "skipped" else {}))
            else:
                median = latency_ms(label, case.frames) * slower.get(label, 1.0)
                row = Row.for_case(case, "ok", median_ms=median, p20_ms=median * (1 - SPREAD),
                                   p80_ms=median * (1 + SPREAD), min_ms=median * (1 - 2 * SPREAD), n=10,
                                   peak_bytes=activation + predicted["weight_bytes"] + case.frames * HIDDEN * 4,
                                   peak_above_bytes=activation, **predicted)
            writer.write_row(replace(row))
    return Path(path)


def append_accuracy(path: Path, scores: dict[str, float], split: str = "test", seeds=(0,)) -> None:
    """Accuracy rows as the model package writes them (the fields the plots read, plus a few more)."""
    with open(path, "a", encoding="utf-8") as f:
        for label, score in scores.items():
            mixer, kernel = label.split(":")
            for seed in seeds:
                f.write(json.dumps({"kind": "accuracy", "mixer": mixer, "kernel": kernel, "split": split,
                                    "macro_f1": score + 0.001 * seed, "uar": score, "accuracy": score,
                                    "corpus": "synthetic", "seed": seed, "params": 1000}) + "\n")
