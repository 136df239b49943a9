"""``train`` mode: one training step of the mixer alone, timed and probed like a forward call.

The step: gradients dropped (``set_to_none``, so the step allocates them, as a real step does
after ``zero_grad``), ``y = mixer(x)`` with ``x.requires_grad``, then the backward of the scalar
loss ``L = sum(y * c)``, run as ``y.backward(c)`` (dL/dy = c), with ``c ~ N(0, 1)`` a fixed random
cotangent drawn once per cell (seed 0), so every parameter and the input get their gradient.
With ``--optimizer-step``, an AdamW step (lr 1e-4, PyTorch's defaults otherwise) follows inside
the timed call; its two moments per parameter exist from the warm-up on, so they count as
baseline like the weights. The mixer is in ``train()`` mode.

Under ``--cuda-graphs`` the whole step (forward, backward, AdamW with ``capturable=True``) is
captured once, PyTorch's whole-network recipe: gradients are dropped before the capture, the
graph allocates them in its pool, and each replay overwrites them.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.cases import DTYPES, Case
from bench.memory import tensor_bytes
from bench.modes.launch import captured, compiled
from bench.modes.probe import is_sdpa, probe

LEARNING_RATE = 1e-4
COTANGENT_SEED = 0


def procedure(case: Case) -> str:
    text = "x.requires_grad; y = mixer(x); y.backward(c) (loss sum(y * c), c ~ N(0, 1) fixed, seed 0)"
    if case.optimizer_step:
        text += f"; AdamW step (lr {LEARNING_RATE:g})"
    return text + ("; CUDA-graph replay" if case.cuda_graphs else "; gradients set to None first")


def measure(case: Case, module: nn.Module, min_reps: int, budget_s: float) -> dict:
    device, dtype = torch.device(case.device), DTYPES[case.dtype]
    module = module.train()
    x = torch.randn(case.batch, case.frames, case.hidden, device=device, dtype=dtype, requires_grad=True)
    generator = torch.Generator(device=device).manual_seed(COTANGENT_SEED)
    cotangent = torch.randn(x.shape, generator=generator, device=device, dtype=dtype)
    optimizer = None
    if case.optimizer_step:
        optimizer = torch.optim.AdamW(module.parameters(), lr=LEARNING_RATE, capturable=case.cuda_graphs)
    run = compiled(module) if case.compile else module

    def drop_gradients() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None

    def step() -> None:
        run(x).backward(cotangent)
        if optimizer is not None:
            optimizer.step()

    def fresh_step() -> None:
        drop_gradients()
        step()

    timed = captured(step, device, before_capture=drop_gradients) if case.cuda_graphs else fresh_step
    # The probed call is ``step`` after the gradients were dropped outside it: freeing tensors the
    # CPU probe never saw created would lower its count. Baseline: weights, input, cotangent and,
    # read after the warm-up created them, AdamW's moments.
    fields = probe(timed, device, min_reps, budget_s,
                   lambda: tensor_bytes(module, x, cotangent, *_optimizer_tensors(optimizer)),
                   is_sdpa(case), plain=step, prepare=drop_gradients)
    return {**fields, "procedure": procedure(case)}


def _optimizer_tensors(optimizer: torch.optim.Optimizer | None) -> list[torch.Tensor]:
    if optimizer is None:
        return []
    return [t for state in optimizer.state.values() for t in state.values() if isinstance(t, torch.Tensor)]
