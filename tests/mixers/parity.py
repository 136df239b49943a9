"""Checks shared by the twins' tests: fla's layer under Triton's interpreter, the reference kernel,
state dicts and cost models. Each test file keeps its own lengths and tolerances and calls these.

Tolerances are functions of the expected tensor's scale (its largest absolute entry), so each
file states exactly the bound it had: ``absolute(1e-4)``, ``of_scale(1e-4, cap=1.0)`` for
``1e-4 * min(1, scale)``, ``of_scale(1e-4, floor=1.0)`` for ``1e-4 * max(1, scale)``, or
``relative(1e-5, 1e-6)`` for ``1e-5 * scale + 1e-6``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import mixers
from bench.memory import peak_memory

Tolerance = Callable[[float], float]


def absolute(atol: float) -> Tolerance:
    return lambda scale: atol


def of_scale(factor: float, cap: float | None = None, floor: float | None = None) -> Tolerance:
    """``factor * min(cap, scale)`` or ``factor * max(floor, scale)``."""
    if cap is not None:
        return lambda scale: factor * min(cap, scale)
    return lambda scale: factor * max(floor, scale)


def relative(rel: float, atol: float) -> Tolerance:
    return lambda scale: rel * scale + atol


def assert_within(actual: torch.Tensor, expected: torch.Tensor, tolerance: Tolerance, what: str = "") -> None:
    err = (actual.float() - expected.float()).abs().max().item()
    scale = expected.float().abs().max().item()
    bound = tolerance(scale)
    assert err <= bound, f"{what}: max abs error {err:.3g} > {bound:.3g} (scale {scale:.3g})"


def fla_pair(name: str, hidden: int = 64, heads: int = 2, init: Callable[[torch.nn.Module], None] | None = None,
             **twin_options) -> tuple[torch.nn.Module, torch.nn.Module]:
    """fla's layer and the twin with its weights (``init`` edits fla's first, under no_grad)."""
    torch.manual_seed(0)
    fla_layer = mixers.build(name, hidden, heads, kernel="fla")
    if init is not None:
        with torch.no_grad():
            init(fla_layer)
    twin = mixers.build(name, hidden, heads, kernel="torch", **twin_options)
    twin.load_state_dict(fla_layer.state_dict(), strict=True)
    return fla_layer, twin


def check_forward_and_gradients(fla_layer: torch.nn.Module, twin: torch.nn.Module, x: torch.Tensor,
                                output: Tolerance, input_grad: Tolerance, param_grad: Tolerance) -> None:
    """Same input through both; output, input gradient and every parameter's gradient (by name)."""
    x_fla, x_twin = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_fla, y_twin = fla_layer(x_fla), twin(x_twin)
    assert_within(y_twin, y_fla, output, "output")
    dy = torch.randn(y_fla.shape, generator=torch.Generator().manual_seed(1))
    y_fla.backward(dy)
    y_twin.backward(dy)
    assert_within(x_twin.grad, x_fla.grad, input_grad, "input gradient")
    fla_params = dict(fla_layer.named_parameters())
    for name, p in twin.named_parameters():
        assert_within(p.grad, fla_params[name].grad, param_grad, name)


def check_inference(fla_layer: torch.nn.Module, twin: torch.nn.Module, x: torch.Tensor, output: Tolerance) -> None:
    """Forward only, under no_grad (where fla picks its recurrent or single-step kernels)."""
    with torch.no_grad():
        assert_within(twin(x), fla_layer(x), output, "output")


def check_bf16_fused_recurrent(name: str, T: int = 45) -> None:
    """bf16 against fla at T <= 64 only: under the interpreter fla's bf16 *chunk* kernels return
    garbage (chunk_gla alone is off by 1e10 at T=77, fp32 is exact), so longer bf16 parity needs a
    GPU (``bench verify``). Both round projections and output to bf16: 2e-2 of the output scale."""
    fla_layer, twin = fla_pair(name)
    fla_layer.bfloat16()
    twin.bfloat16()
    x = torch.randn(2, T, 64).bfloat16()
    with torch.no_grad():
        y_fla, y_twin = fla_layer(x).float(), twin(x).float()
    assert (y_twin - y_fla).abs().max() <= 2e-2 * y_fla.abs().max()


def check_reference_kernel(name: str, T: int, tolerance: Tolerance, hidden: int = 96, heads: int = 3,
                           batch: int = 2, init: Callable[[torch.nn.Module], None] | None = None) -> None:
    """The twin against its ``reference`` kernel (the same projections around fla's naive op)."""
    torch.manual_seed(0)
    twin = mixers.build(name, hidden, heads, kernel="torch")
    if init is not None:
        with torch.no_grad():
            init(twin)
    reference = mixers.build(name, hidden, heads, kernel="reference")
    reference.load_state_dict(twin.state_dict(), strict=True)
    x = torch.randn(batch, T, hidden)
    with torch.no_grad():
        out = twin(x)
        assert out.shape == (batch, T, hidden)
        assert_within(out, reference(x), tolerance, "output")


def check_state_dict(name: str) -> None:
    """The twin's state dict has exactly fla's keys, in order, and shapes; both load each other strictly."""
    fla_layer = mixers.build(name, 1024, 4, kernel="fla")
    twin = mixers.build(name, 1024, 4, kernel="torch")
    assert list(twin.state_dict()) == list(fla_layer.state_dict())
    assert {k: tuple(v.shape) for k, v in twin.state_dict().items()} == {
        k: tuple(v.shape) for k, v in fla_layer.state_dict().items()}
    twin.load_state_dict(fla_layer.state_dict(), strict=True)
    fla_layer.load_state_dict(twin.state_dict(), strict=True)


def check_cost_model(name: str, frames: int, rel: float = 0.25) -> None:
    """The cost model's activation bytes against the measured CPU peak (inference, fp32, D 1024, 4 heads)."""
    torch.manual_seed(0)
    twin = mixers.build(name, 1024, 4, kernel="torch")
    x = torch.randn(1, frames, 1024)
    with torch.inference_mode():
        measured = peak_memory(lambda: twin(x), "cpu").above_bytes
    predicted = mixers.cost(name, frames, 1024, 4, kernel="torch").activation_bytes
    assert predicted == pytest.approx(measured, rel=rel)
