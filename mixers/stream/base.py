"""What every recurrent (streaming) form shares: the ``Stepper`` interface and its states.

A stepper runs one built mixer as a recurrence over a live stream, one frame at a time:

    state = stepper.prefill(x[:, :T])          # the state after T frames of context
    y_t, state = stepper.step(state, x[:, T])  # one frame [B, D] -> [B, D]

Streaming is causal by definition: frame t sees frames 0..t only, so ``step`` reproduces the
*causal* parallel output (for softmax attention: the module run with ``causal=True``).

Purity. ``step`` never changes what its input state holds: stepping the same state again gives
the same output (H6's stream mode times repeated steps from one state). The fixed-size states
(RetNet, LightNet, GSA, KDA, ResLSTM) are fresh tensors at every step. The growing KV caches of
softmax attention and FoX append into spare capacity of a buffer shared with the parent state
(see ``kv_cache.KVCache``): the parent keeps seeing its own frames, but of two children stepped
from one parent only the latest is valid. ``clone_state`` makes an independent copy to branch.

Streaming is inference: ``prefill`` and ``step`` run without autograd. Derived weights (fused
projections) are cached by the steppers and re-made when a parameter changes (its version or
storage), so a stepper stays valid after ``load_state_dict`` or an optimizer step.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn


@dataclasses.dataclass(frozen=True, eq=False)
class State:
    """A recurrent state: tensors (fields) and ``length``, the number of frames it has seen."""

    length: int

    def tensors(self) -> tuple[Tensor, ...]:
        """The tensors that make up the state (what ``state_bytes`` counts)."""
        return tuple(v for f in dataclasses.fields(self) if isinstance(v := getattr(self, f.name), Tensor))

    def clone(self) -> State:
        """An independent copy (no storage shared with this state)."""
        return dataclasses.replace(self, **{f.name: v.clone() for f in dataclasses.fields(self)
                                            if isinstance(v := getattr(self, f.name), Tensor)})


class Stepper(ABC):
    """The recurrent form of one mixer module (see the module docstring)."""

    def __init__(self, module: nn.Module):
        self.module = module
        self.hidden_size: int = module.hidden_size
        self._cache: dict[str, tuple[tuple, Tensor]] = {}

    # --- the interface ---------------------------------------------------------------------------
    def init(self, batch: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> State:
        """The empty state (no frames seen) for ``batch`` streams; device and dtype default to the module's."""
        if batch < 1:
            raise ValueError(f"batch must be positive, got {batch}")
        parameter = next(self.module.parameters())
        with torch.no_grad():
            return self._init(batch, torch.device(device) if device is not None else parameter.device,
                              dtype or parameter.dtype)

    def prefill(self, x: Tensor) -> State:
        """The state after the frames of ``x [B, T, D]`` (T >= 0; T = 0 gives ``init``).

        Computed in one parallel pass where a fast form exists; equal to stepping through x."""
        if x.dim() != 3 or x.shape[-1] != self.hidden_size:
            raise ValueError(f"expected frames [batch, length, {self.hidden_size}], got {tuple(x.shape)}")
        if x.shape[1] == 0:
            return self.init(x.shape[0], x.device, x.dtype)
        with torch.no_grad():
            return self._prefill(x)

    def step(self, state: State, x: Tensor) -> tuple[Tensor, State]:
        """One frame ``x [B, D]`` after ``state``: ``(y [B, D], next state)``; ``state`` is unchanged."""
        if x.dim() != 2 or x.shape[-1] != self.hidden_size:
            raise ValueError(f"expected one frame [batch, {self.hidden_size}], got {tuple(x.shape)}")
        batch = state.tensors()[0].shape[self._batch_dim]
        if x.shape[0] != batch:
            raise ValueError(f"the frame's batch is {x.shape[0]} but the state's is {batch}")
        with torch.no_grad():
            return self._step(state, x)

    def state_bytes(self, state: State) -> int:
        """Bytes of the recurrent state's tensors (a KV cache counts its frames, not spare capacity)."""
        return sum(t.numel() * t.element_size() for t in state.tensors())

    def clone_state(self, state: State) -> State:
        """An independent copy of ``state``, to step two continuations from one state."""
        return state.clone()

    def run(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Step through every frame of ``x [B, T, D]`` (T >= 1): ``(y [B, T, D], final state)``."""
        state = self.init(x.shape[0], x.device, x.dtype) if state is None else state
        outputs = []
        for t in range(x.shape[1]):
            y, state = self.step(state, x[:, t])
            outputs.append(y)
        return torch.stack(outputs, dim=1), state

    # --- what each mixer provides -----------------------------------------------------------------
    _batch_dim = 0
    """The batch dimension of the state's first tensor (ResLSTM stacks layers first)."""

    @abstractmethod
    def _init(self, batch: int, device: torch.device, dtype: torch.dtype) -> State: ...

    @abstractmethod
    def _prefill(self, x: Tensor) -> State: ...

    @abstractmethod
    def _step(self, state: State, x: Tensor) -> tuple[Tensor, State]: ...

    # --- helpers ------------------------------------------------------------------------------------
    def derived(self, name: str, sources: Sequence[Tensor | None], make: Callable[[], Tensor]) -> Tensor:
        """``make()``, cached until one of ``sources`` changes (storage, version, dtype or device)."""
        # Inference tensors (a module made under inference_mode) keep no version counter.
        key = tuple(None if s is None else (s.data_ptr(), -1 if s.is_inference() else s._version, s.dtype, s.device)
                    for s in sources)
        hit = self._cache.get(name)
        if hit is None or hit[0] != key:
            with torch.no_grad():
                hit = self._cache[name] = (key, make())
        return hit[1]

    def fused_linear(self, name: str, layers: Sequence[nn.Linear],
                     sizes: Sequence[int] | None = None) -> Callable[[Tensor], list[Tensor]]:
        """One matmul for several linear layers on the same input; returns a function giving their
        outputs (split by layer, or into ``sizes`` columns: adjacent layers as one output)."""
        weights = [layer.weight for layer in layers]
        biases = [layer.bias for layer in layers]
        weight = self.derived(name + ".weight", weights, lambda: torch.cat(weights))
        bias = None
        if any(b is not None for b in biases):
            bias = self.derived(name + ".bias", biases, lambda: torch.cat([
                b if b is not None else w.new_zeros(w.shape[0]) for w, b in zip(weights, biases)]))
        sizes = [w.shape[0] for w in weights] if sizes is None else list(sizes)
        return lambda x: list(torch.nn.functional.linear(x, weight, bias).split(sizes, -1))


def decay_after(g: Tensor) -> Tensor:
    """``sum_{j < t < T} g_t`` for every frame j of log decays ``g [B, T, ...]``: the log decay a
    contribution made at frame j has seen by the end. Summed from the end (0 for the last
    frame), so the recent frames that matter most carry no cancellation error."""
    after = g.flip(1).cumsum(1).flip(1)  # sum over t >= j
    return torch.cat((after[:, 1:], torch.zeros_like(after[:, :1])), dim=1)


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """The recurrences' arithmetic: fp32 for fp32 and narrower inputs, fp64 stays fp64."""
    return torch.promote_types(dtype, torch.float32)
