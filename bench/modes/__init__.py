"""One measuring function per mode; each times a call and probes its memory with the shared probes.

- ``forward`` (``bench.modes.forward``): one inference call ``y = mixer(x)``, as the paper measured.
- ``train`` (``bench.modes.train``): forward + backward of a scalar loss to the input and every
  parameter, optionally + an AdamW step.
- ``stream`` (``bench.modes.stream``): one recurrent step after T frames of context.

Every mode returns the same fields (``bench.modes.probe.probe``): timing stats, peak memory, and
for SA ``sdpa`` the backend PyTorch chose, plus its own (``state_bytes``, ``procedure``).
"""

from __future__ import annotations

from torch import nn

from bench.cases import Case


def run(case: Case, module: nn.Module, min_reps: int, budget_s: float) -> dict:
    """Measure ``module`` in ``case.mode``; returns Row fields."""
    from bench.modes import forward, stream, train

    measure = {"forward": forward.measure, "train": train.measure, "stream": stream.measure}[case.mode]
    return measure(case, module, min_reps, budget_s)
