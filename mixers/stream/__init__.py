"""Recurrent (streaming) forms of the mixers: one frame in, one frame out, with explicit state.

    from mixers.stream import stepper
    s = stepper(mixers.build("gsa", 256, 2, kernel="torch"))
    state = s.prefill(x[:, :T])              # state after T frames of context ([B, T, D], T >= 0)
    y_t, state = s.step(state, x[:, T])      # [B, D] -> [B, D]; the input state is unchanged
    s.state_bytes(state)                     # bytes of the recurrent state

Each step reproduces the causal parallel output of the same module (fp32 rounding; tests in
tests/mixers/test_stream.py). One file per mixer: ``sa`` (KV cache); ``retnet``, ``lightnet``,
``gsa``, ``gla``, ``hgrn2``, ``kda``, ``deltanet``, ``gated_deltanet``, ``mamba2`` (constant-size
matrix states; the delta rules share ``delta_rule``, the short convolutions ``short_conv``); ``fox`` (KV
cache with cumulative forget gates); ``reslstm`` (LSTM cells). The interface and its purity
rules: ``mixers.stream.base``.
"""

from __future__ import annotations

import importlib

from torch import nn

from mixers.stream.base import State, Stepper

STEPPERS: dict[tuple[str, str], str] = {
    ("sa", "sdpa"): "mixers.stream.sa",
    ("sa", "naive"): "mixers.stream.sa",
    ("retnet", "torch"): "mixers.stream.retnet",
    ("lightnet", "torch"): "mixers.stream.lightnet",
    ("gsa", "torch"): "mixers.stream.gsa",
    ("fox", "torch"): "mixers.stream.fox",
    ("kda", "torch"): "mixers.stream.kda",
    ("reslstm", "torch"): "mixers.stream.reslstm",
    ("gla", "torch"): "mixers.stream.gla",
    ("deltanet", "torch"): "mixers.stream.deltanet",
    ("gated_deltanet", "torch"): "mixers.stream.gated_deltanet",
    ("mamba2", "torch"): "mixers.stream.mamba2",
    ("hgrn2", "torch"): "mixers.stream.hgrn2",
}


def supported() -> list[tuple[str, str]]:
    """The (mixer, kernel) pairs that have a recurrent form."""
    return list(STEPPERS)


def stepper(module: nn.Module) -> Stepper:
    """The recurrent form of ``module``, a mixer made by ``mixers.build`` (which sets its name and kernel)."""
    name, kernel = getattr(module, "mixer_name", None), getattr(module, "kernel", None)
    if name is None or kernel is None:
        raise ValueError(f"{type(module).__name__} has no mixer_name/kernel: build it with mixers.build")
    if (name, kernel) not in STEPPERS:
        offered = ", ".join(f"{n}:{k}" for n, k in STEPPERS)
        raise ValueError(f"mixer {name!r} with kernel {kernel!r} has no recurrent form here; streaming "
                         f"supports {offered}")
    return importlib.import_module(STEPPERS[(name, kernel)]).make(module)


__all__ = ["STEPPERS", "State", "Stepper", "stepper", "supported"]
