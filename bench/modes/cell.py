"""A cell's module and its cost prediction, built from the case's axes (mixer, kernel, causal,
bidirectional, dtype, device) the same way for every mode."""

from __future__ import annotations

import torch
from torch import nn

import mixers
from bench.cases import DTYPES, Case
from mixers import bidirectional
from mixers.cost import Cost

ADAMW_STATES = 2
"""AdamW keeps two moments per parameter (``exp_avg``, ``exp_avg_sq``), each parameter-sized."""


def _options(case: Case) -> dict:
    # Softmax attention alone has a mask; a bidirectional SA is built causal in both directions.
    return {"causal": case.causal} if case.mixer == "sa" and not case.bidirectional else {}


def build_module(case: Case) -> nn.Module:
    """The cell's mixer (or bidirectional pair) on the case's device and dtype."""
    device, dtype = torch.device(case.device), DTYPES[case.dtype]
    if case.bidirectional:
        module = bidirectional.build(case.mixer, case.hidden, case.heads, kernel=case.kernel,
                                     combine=case.combine, device=device)
    else:
        module = mixers.build(case.mixer, case.hidden, case.heads, kernel=case.kernel, device=device,
                              **_options(case))
    return module.to(device=device, dtype=dtype)


def predict(case: Case) -> Cost:
    """The cost model's prediction for the cell (one direction, doubled by the bidirectional wrapper)."""
    element = torch.empty(0, dtype=DTYPES[case.dtype]).element_size()
    options = {"causal": True} if case.mixer == "sa" and case.bidirectional else _options(case)
    one = mixers.cost(case.mixer, case.frames, case.hidden, case.heads, case.batch, element, case.kernel,
                      **options)
    if not case.bidirectional:
        return one
    return bidirectional.cost(one, case.frames, case.hidden, case.batch, element, case.combine)


def needed_bytes(case: Case, cost: Cost) -> int:
    """What the cell needs in memory: weights, input and the mode's own peak, as the model predicts it."""
    element = torch.empty(0, dtype=DTYPES[case.dtype]).element_size()
    token = case.batch * case.frames * case.hidden * element
    if case.mode == "train":
        # Input, its gradient and the cotangent; gradients and (with AdamW) two moments per weight.
        weights = cost.weight_bytes * (2 + (ADAMW_STATES if case.optimizer_step else 0))
        return weights + 3 * token + (cost.train_bytes if cost.train_bytes is not None else 3 * cost.activation_bytes)
    if case.mode == "stream":
        # The prefill of T frames may run the parallel form once; the step keeps only the state.
        return cost.weight_bytes + token + max(cost.activation_bytes, cost.state_bytes)
    return cost.weight_bytes + token + cost.activation_bytes
