"""``forward`` mode: one inference call ``y = mixer(x)`` at batch B over T frames, as the paper measured.

Under ``torch.inference_mode`` (no autograd graph). ``--compile`` compiles the module; with
``--cuda-graphs`` the call is captured once on a static input and each timed call is a replay.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.cases import DTYPES, Case
from bench.memory import tensor_bytes
from bench.modes.launch import captured, compiled
from bench.modes.probe import is_sdpa, probe

PROCEDURE = "y = mixer(x) under inference_mode"


def measure(case: Case, module: nn.Module, min_reps: int, budget_s: float) -> dict:
    device = torch.device(case.device)
    module = module.eval()
    x = torch.randn(case.batch, case.frames, case.hidden, device=device, dtype=DTYPES[case.dtype])
    run = compiled(module) if case.compile else module

    def call():
        return run(x)

    with torch.inference_mode():
        timed = captured(call, device) if case.cuda_graphs else call
        fields = probe(timed, device, min_reps, budget_s, tensor_bytes(module, x), is_sdpa(case), plain=call)
    return {**fields, "procedure": PROCEDURE + (", CUDA-graph replay" if case.cuda_graphs else "")}
