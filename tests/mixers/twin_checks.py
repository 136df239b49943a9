"""Checks shared by the tests of the fla mixers added beyond the paper (gla, deltanet, gated_deltanet,
hgrn2, mamba2): one set of weights in several kernels, errors judged against the reference's scale."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch
from torch import nn

import mixers
from bench.memory import peak_memory

FP32 = 1e-4
"""fp32 tolerance at unit-scale inputs, times max(1, the reference's largest magnitude)."""


def err(actual: torch.Tensor, expected: torch.Tensor) -> tuple[float, float]:
    """Max abs error and the reference's scale."""
    return (actual.float() - expected.float()).abs().max().item(), expected.float().abs().max().item()


def close(actual: torch.Tensor, expected: torch.Tensor, tolerance: float = FP32) -> bool:
    e, scale = err(actual, expected)
    return e <= tolerance * max(1.0, scale)


def layers(name: str, *kernels: str, hidden: int = 64, heads: int = 2,
           tweak: Callable[[nn.Module], None] | None = None, **options) -> list[nn.Module]:
    """The mixer in each kernel with the first one's weights (after ``tweak``), loaded strictly."""
    torch.manual_seed(0)
    first = mixers.build(name, hidden, heads, kernel=kernels[0], device="cpu", **options)
    if tweak is not None:
        with torch.no_grad():
            tweak(first)
    others = [mixers.build(name, hidden, heads, kernel=k, device="cpu", **options) for k in kernels[1:]]
    for other in others:
        other.load_state_dict(first.state_dict(), strict=True)
    return [first, *others]


def assert_same_state_dict(name: str, hidden: int = 1024, heads: int = 4) -> tuple[nn.Module, nn.Module]:
    """The twin's state dict has fla's keys in fla's order and shapes, and loads strictly."""
    fla_layer = mixers.build(name, hidden, heads, kernel="fla", device="cpu")
    twin = mixers.build(name, hidden, heads, kernel="torch", device="cpu")
    assert list(twin.state_dict()) == list(fla_layer.state_dict())
    assert {k: v.shape for k, v in twin.state_dict().items()} == {k: v.shape for k, v in fla_layer.state_dict().items()}
    twin.load_state_dict(fla_layer.state_dict(), strict=True)
    return fla_layer, twin


def assert_matches_fla(fla_layer: nn.Module, twin: nn.Module, x: torch.Tensor, tolerance: float = FP32) -> None:
    """Output, input gradient and every parameter gradient within ``tolerance`` of their scale."""
    x = x.detach().clone().requires_grad_(True)
    out_fla, out_twin = fla_layer(x), twin(x)
    assert out_fla.shape == out_twin.shape == x.shape
    e, scale = err(out_twin, out_fla)
    assert e <= tolerance * max(1.0, scale), f"output: {e:.3g} (scale {scale:.3g})"
    grad_out = torch.randn(out_fla.shape, generator=torch.Generator().manual_seed(1))
    names = ["input", *(n for n, _ in fla_layer.named_parameters())]
    grads_fla = torch.autograd.grad(out_fla, [x, *fla_layer.parameters()], grad_out)
    grads_twin = torch.autograd.grad(out_twin, [x, *twin.parameters()], grad_out)
    for n, a, b in zip(names, grads_twin, grads_fla):
        e, scale = err(a, b)
        assert e <= tolerance * max(1.0, scale), f"{n}: {e:.3g} (scale {scale:.3g})"


def assert_weight_bytes(name: str, hidden: int = 1024, heads: int = 4) -> None:
    twin = mixers.build(name, hidden, heads, kernel="torch", device="cpu")
    cost = mixers.cost(name, 100, hidden, heads, batch=2, dtype_bytes=2, kernel="torch")
    assert cost.weight_bytes == 2 * sum(p.numel() for p in twin.parameters())


def measured_and_predicted(name: str, length: int, hidden: int, heads: int, **options) -> tuple[int, int]:
    """The CPU probe's activation peak of one inference call of the twin, and its cost model's."""
    torch.manual_seed(0)
    twin = mixers.build(name, hidden, heads, kernel="torch", device="cpu", **options)
    x = torch.randn(1, length, hidden)
    with torch.inference_mode():
        twin(x)  # warm: lazy imports and caches are not the call's memory
        measured = peak_memory(lambda: twin(x), "cpu").above_bytes
    module = importlib.import_module(mixers.REGISTRY[name])
    predicted = module.cost(length=length, hidden_size=hidden, num_heads=heads, batch=1, dtype_bytes=4,
                            kernel="torch", **options)
    return measured, predicted.activation_bytes
