"""Training: every twin's backward against autograd through the mixer's reference kernel.

The reference kernels wrap fla's naive ops (``fla/ops/*/naive.py``), plain PyTorch that autograd
differentiates; SA's reference is its ``naive`` kernel (materialized scores) against ``sdpa``;
ResLSTM's is PyTorch's ``nn.LSTMCell`` unrolled step by step. Same weights (one state dict), the
loss ``sum(y * c)`` with a fixed random cotangent ``c``, gradients of the input and of every
parameter. Tolerance, fp32 at unit-scale inputs: 1e-4 absolute for outputs and the input's
gradient; a parameter's gradient sums over all B*T tokens, so 1e-4 of its largest entry + 1e-5.
"""

import functools

import pytest
import torch
from torch import nn

import mixers
from bench.cases import PRESETS, frames
from bench.memory import peak_memory

B, T, D, H = 2, 70, 64, 2  # T crosses a 64-token chunk boundary


def _pair(name: str) -> tuple[nn.Module, nn.Module]:
    kernels = mixers.kernels(name)
    torch.manual_seed(0)
    if name == "sa":
        twin, reference = mixers.build(name, D, H, kernel="sdpa"), mixers.build(name, D, H, kernel="naive")
    elif "torch" in kernels and "reference" in kernels:
        twin, reference = mixers.build(name, D, H, kernel="torch"), mixers.build(name, D, H, kernel="reference")
    elif name == "reslstm":
        twin = mixers.build(name, D, H, kernel="torch")
        return twin, UnrolledResLSTM(twin)
    else:
        pytest.skip(f"{name}: kernels {kernels} have no torch twin beside a reference kernel")
    reference.load_state_dict(twin.state_dict(), strict=True)
    return twin, reference


class UnrolledResLSTM(nn.Module):
    """The ResLSTM mixer's function with ``nn.LSTMCell``s stepped in Python (PyTorch's own cell)."""

    def __init__(self, twin: nn.Module):
        super().__init__()
        self.in_proj, self.out_proj = twin.in_proj, twin.out_proj
        self.cells = nn.ModuleList()
        for lstm in twin.stack.lstms:
            cell = nn.LSTMCell(lstm.input_size, lstm.hidden_size)
            for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, part).data.copy_(getattr(lstm, f"{part}_l0").data)
            self.cells.append(cell)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.in_proj(x)
        for cell in self.cells:
            state, outputs = None, []
            for t in range(h.shape[1]):
                state = cell(h[:, t], state)
                outputs.append(state[0])
            h = torch.stack(outputs, 1) + h  # residual (equal widths)
        return self.out_proj(h)


def _gradients(module: nn.Module, x: torch.Tensor, cotangent: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.clone().requires_grad_()
    y = module(x)
    y.backward(cotangent)
    return y.detach(), x.grad, {n: p.grad for n, p in module.named_parameters()}


@pytest.mark.parametrize("name", mixers.names())
def test_twin_gradients_match_autograd_through_the_reference(name):
    twin, reference = _pair(name)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, D, generator=generator)
    cotangent = torch.randn(B, T, D, generator=generator)
    y, dx, dparams = _gradients(twin.train(), x, cotangent)
    y_ref, dx_ref, dparams_ref = _gradients(reference.train(), x, cotangent)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-4)
    torch.testing.assert_close(dx, dx_ref, rtol=0, atol=1e-4)
    if name == "reslstm":  # the unrolled cells hold copies of the LSTM weights under other names
        dparams = {n: g for n, g in dparams.items() if "lstms" not in n}
        dparams_ref = {n: g for n, g in dparams_ref.items() if "cells" not in n}
        for lstm, cell in zip(twin.stack.lstms, reference.cells):
            for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                dparams[f"{part} of {cell}"] = getattr(lstm, f"{part}_l0").grad
                dparams_ref[f"{part} of {cell}"] = getattr(cell, part).grad
    assert dparams.keys() == dparams_ref.keys()
    for key, grad in dparams.items():
        expected = dparams_ref[key]
        assert grad is not None and expected is not None, key
        assert (grad - expected).abs().max() <= 1e-4 * expected.abs().max() + 1e-5, key


# --- Training memory: naive SA against every twin, at the quick preset's longest length ----------------
# 100 s is 4,999 frames. At the paper's width (1024) one probed step of every mixer takes minutes on
# a 2-core CPU, so this runs at width 64 and the same length; the twins' train cost models were
# fitted at widths 128 to 1024, so 64 is out of their sample. Naive SA's scores do not depend on width.
TRAIN_WIDTH, TRAIN_HEADS = 64, 4

def _train_peak(spec: str) -> tuple[int, int]:
    """(measured, predicted) peak above weights and input of one training step of ``spec``."""
    name, kernel = spec.split(":")
    length = frames(max(PRESETS["quick"].seconds))
    predicted = mixers.cost(name, length, TRAIN_WIDTH, TRAIN_HEADS, kernel=kernel).train_bytes
    if predicted is None:
        pytest.skip(f"{spec} has no training estimate in its cost model")
    torch.manual_seed(0)
    module = mixers.build(name, TRAIN_WIDTH, TRAIN_HEADS, kernel=kernel).train()
    x = torch.randn(1, length, TRAIN_WIDTH, requires_grad=True)
    cotangent = torch.randn_like(x)
    return peak_memory(lambda: module(x).backward(cotangent), "cpu").above_bytes, predicted


@functools.cache
def _naive_peak() -> tuple[int, int]:
    return _train_peak("sa:naive")


def _twins() -> list[str]:
    return ["sa:sdpa"] + [f"{n}:torch" for n in mixers.names() if "torch" in mixers.kernels(n)]


@pytest.mark.slow
@pytest.mark.parametrize("twin", _twins())
def test_naive_sa_training_peak_exceeds_each_twin_by_the_predicted_factor(twin):
    measured, predicted = _train_peak(twin)
    naive_measured, naive_predicted = _naive_peak()
    assert naive_measured / measured == pytest.approx(naive_predicted / predicted, rel=0.25)
    assert naive_measured > measured
