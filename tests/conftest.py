"""Shared pytest set-up. Keep each concern in its own clearly marked section."""

from __future__ import annotations

import os

import pytest
import torch

# --- Triton interpreter (bench/interpreter.py) ---------------------------------------------------
# fla's Triton kernels run on a CPU-only machine through Triton's interpreter. The interpreter is
# chosen when a kernel is defined, so TRITON_INTERPRET must be set before anything imports fla,
# and the patches must be in place before the first kernel launch (rewritten kernels are cached).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
    if os.environ["TRITON_INTERPRET"] == "1":
        from bench.interpreter import enable

        enable()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Interpreter tests feed CPU tensors to fla's kernels: they need the interpreter, never a GPU.
    if os.environ.get("TRITON_INTERPRET") == "1":
        return
    skip = pytest.mark.skip(reason="runs fla's kernels under Triton's interpreter; TRITON_INTERPRET is not '1'")
    for item in items:
        if "interpreter" in item.keywords:
            item.add_marker(skip)
