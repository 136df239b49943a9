"""``stream`` mode: the per-frame cost of a mixer run as a recurrence over a live stream.

With ``mixers.stream.stepper(mixer)`` (the recurrent form of each mixer):

    state = stepper.prefill(x)          x [B, T, D]: T frames of context, once, outside the timing
    y_t, _ = stepper.step(state, x_t)   x_t [B, D]: the timed call, one new frame

Every timed call steps from the SAME T-frame state (the returned state is dropped), so each one
costs what frame T + 1 costs and the KV cache of SA does not grow during the timing; a step that
changes the size of the state it was given is an error. ``state_bytes`` is the stepper's own
count of the state after T frames (SA: its KV cache, growing with T; the recurrent mixers: a
fixed size). The memory probe measures one step above weights, state and x_t. ``--compile``
compiles ``stepper.step``; ``--cuda-graphs`` captures one step from the fixed state.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.cases import DTYPES, Case
from bench.memory import tensor_bytes
from bench.modes.launch import captured, compiled
from bench.modes.probe import is_sdpa, probe

PROCEDURE = "state = prefill(T frames) untimed; each timed call: step(state, x_t) from that same state"


def measure(case: Case, module: nn.Module, min_reps: int, budget_s: float) -> dict:
    from mixers import stream

    device, dtype = torch.device(case.device), DTYPES[case.dtype]
    module = module.eval()
    stepper = stream.stepper(module)
    step = compiled(stepper.step) if case.compile else stepper.step
    with torch.inference_mode():
        state = stepper.prefill(torch.randn(case.batch, case.frames, case.hidden, device=device, dtype=dtype))
        x_t = torch.randn(case.batch, case.hidden, device=device, dtype=dtype)
        state_bytes = stepper.state_bytes(state)

        def call():
            return step(state, x_t)[0]

        timed = captured(call, device) if case.cuda_graphs else call
        fields = probe(timed, device, min_reps, budget_s, tensor_bytes(module, x_t) + state_bytes,
                       is_sdpa(case), plain=call)
        if stepper.state_bytes(state) != state_bytes:
            raise RuntimeError(f"{case.spec}: step changed the size of the state it was given "
                               f"({state_bytes} -> {stepper.state_bytes(state)} bytes); it must return a new one")
    return {**fields, "state_bytes": state_bytes,
            "procedure": PROCEDURE + (", CUDA-graph replay" if case.cuda_graphs else "")}
