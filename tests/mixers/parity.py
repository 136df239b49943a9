"""Checks shared by the twins' tests: fla's layer under Triton's interpreter, the reference kernel,
segments, bf16, state dicts and cost models. Each test file keeps its own lengths and tolerances and
calls these (test_fla_twins.py runs the ones the mixers added beyond the paper share, one case each).

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


FP32 = of_scale(1e-4, floor=1.0)
"""fp32 at unit-scale inputs: 1e-4 of max(1, the expected tensor's largest magnitude)."""


def assert_within(actual: torch.Tensor, expected: torch.Tensor, tolerance: Tolerance, what: str = "") -> None:
    err = (actual.float() - expected.float()).abs().max().item()
    scale = expected.float().abs().max().item()
    bound = tolerance(scale)
    assert err <= bound, f"{what}: max abs error {err:.3g} > {bound:.3g} (scale {scale:.3g})"


def check_output_and_state(function: Callable[..., tuple], reference: Callable[..., tuple],
                           inputs: tuple[torch.Tensor, ...], initial_state: torch.Tensor, tolerance: Tolerance) -> None:
    """``function(*inputs, initial_state)`` against ``reference`` (given its own copy of the state, which
    some of fla's naive ops update in place): the output and the final state."""
    out, state = function(*inputs, initial_state)
    expected_out, expected_state = reference(*inputs, initial_state.clone())
    assert_within(out, expected_out, tolerance, "output")
    assert_within(state, expected_state, tolerance, "final state")


def check_gradients(function: Callable[..., tuple], reference: Callable[..., tuple], inputs: list[torch.Tensor],
                    names: str, tolerance: Tolerance) -> None:
    """Gradients of ``function``'s first output, with respect to each of ``inputs`` (named by the words
    of ``names``), against autograd through ``reference``'s, for one random output gradient."""
    inputs = [x.requires_grad_() for x in inputs]
    expected_out = reference(*inputs)[0]
    grad_out = torch.randn(expected_out.shape)
    expected = torch.autograd.grad(expected_out, inputs, grad_out)
    actual = torch.autograd.grad(function(*inputs)[0], inputs, grad_out)
    assert len(names.split()) == len(inputs)
    for name, a, e in zip(names.split(), actual, expected):
        assert_within(a, e, tolerance, f"gradient of {name}")


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


def same_weights(name: str, *kernels: str, hidden: int = 64, heads: int = 2,
                 init: Callable[[torch.nn.Module], None] | None = None, **options) -> list[torch.nn.Module]:
    """The mixer in each of ``kernels``, all built with ``options``, with the first one's weights
    (``init`` edits the first, under no_grad), loaded strictly."""
    torch.manual_seed(0)
    first = mixers.build(name, hidden, heads, kernel=kernels[0], device="cpu", **options)
    if init is not None:
        with torch.no_grad():
            init(first)
    others = [mixers.build(name, hidden, heads, kernel=k, device="cpu", **options) for k in kernels[1:]]
    for other in others:
        other.load_state_dict(first.state_dict(), strict=True)
    return [first, *others]


def check_forward_and_gradients(fla_layer: torch.nn.Module, twin: torch.nn.Module, x: torch.Tensor,
                                output: Tolerance, input_grad: Tolerance, param_grad: Tolerance) -> None:
    """Same input through both; output, input gradient and every parameter's gradient (by name)."""
    x_fla, x_twin = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_fla, y_twin = fla_layer(x_fla), twin(x_twin)
    assert y_fla.shape == y_twin.shape == x.shape
    assert_within(y_twin, y_fla, output, "output")
    dy = torch.randn(y_fla.shape, generator=torch.Generator().manual_seed(1))
    y_fla.backward(dy)
    y_twin.backward(dy)
    assert_within(x_twin.grad, x_fla.grad, input_grad, "input gradient")
    fla_params = dict(fla_layer.named_parameters())
    assert [name for name, _ in twin.named_parameters()] == list(fla_params)
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
                           batch: int = 2, init: Callable[[torch.nn.Module], None] | None = None,
                           segment: int | None = None, **options) -> None:
    """The twin against its ``reference`` kernel (the same projections around fla's naive op); with
    ``segment`` the twin runs in segments of that many steps, its state carried across."""
    twin, reference = same_weights(name, "torch", "reference", hidden=hidden, heads=heads, init=init, **options)
    if segment is not None:
        twin.segment = segment
    x = torch.randn(batch, T, hidden)
    with torch.no_grad():
        out = twin(x)
        assert out.shape == (batch, T, hidden)
        assert_within(out, reference(x), tolerance, "output")


def check_state_dict(name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The twin's state dict has exactly fla's keys, in order, and shapes; both load each other strictly.
    Returns fla's layer and the twin (D 1024, 4 heads), for checks of their head sizes."""
    fla_layer = mixers.build(name, 1024, 4, kernel="fla")
    twin = mixers.build(name, 1024, 4, kernel="torch")
    assert list(twin.state_dict()) == list(fla_layer.state_dict())
    assert {k: tuple(v.shape) for k, v in twin.state_dict().items()} == {
        k: tuple(v.shape) for k, v in fla_layer.state_dict().items()}
    twin.load_state_dict(fla_layer.state_dict(), strict=True)
    fla_layer.load_state_dict(twin.state_dict(), strict=True)
    return fla_layer, twin


def check_segments_match_whole(name: str, init: Callable[[torch.nn.Module], None] | None = None,
                               **options) -> None:
    """Segments of 64 (state carried) against one pass over T=150: 1e-5 abs, fp32."""
    (twin,) = same_weights(name, "torch", init=init, **options)
    x = torch.randn(1, 150, 64)
    with torch.no_grad():
        whole = twin(x)
        twin.segment = 64
        assert_within(twin(x), whole, absolute(1e-5), "segmented output")


def check_bf16_close_to_fp32(name: str, tolerance: Tolerance, T: int = 130, **options) -> None:
    """The twin in bf16 against itself in fp32 (same weights, rounded): no fla kernel involved, any T."""
    (twin,) = same_weights(name, "torch", **options)
    x = torch.randn(2, T, 64)
    with torch.no_grad():
        expected = twin(x)
        low = twin.to(torch.bfloat16)(x.bfloat16())
    assert low.dtype == torch.bfloat16
    assert_within(low, expected, tolerance, "bf16 output")


def check_weight_bytes(name: str, hidden: int = 1024, heads: int = 4) -> None:
    """The cost model's weight bytes are the twin's parameters' at 2 bytes each."""
    twin = mixers.build(name, hidden, heads, kernel="torch", device="cpu")
    cost = mixers.cost(name, 100, hidden, heads, batch=2, dtype_bytes=2, kernel="torch")
    assert cost.weight_bytes == 2 * sum(p.numel() for p in twin.parameters())


def check_cost_model(name: str, frames: int, rel: float = 0.25, hidden: int = 1024, heads: int = 4,
                     warm_up: bool = False, **options) -> None:
    """The cost model's activation bytes against the measured CPU peak (inference, fp32, batch 1);
    ``warm_up`` runs the call once before measuring (lazy imports and caches are not its memory)."""
    torch.manual_seed(0)
    twin = mixers.build(name, hidden, heads, kernel="torch", device="cpu", **options)
    x = torch.randn(1, frames, hidden)
    with torch.inference_mode():
        if warm_up:
            twin(x)
        measured = peak_memory(lambda: twin(x), "cpu").above_bytes
    predicted = mixers.cost(name, frames, hidden, heads, kernel="torch", **options).activation_bytes
    assert predicted == pytest.approx(measured, rel=rel)
