"""fla's Triton kernels on CPU through the patched interpreter (bench/interpreter.py)."""

from __future__ import annotations

import os

import pytest
import torch

pytestmark = pytest.mark.interpreter


def test_enable_is_idempotent() -> None:
    from bench.interpreter import enable

    enable()
    enable()


def test_enable_refuses_without_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.interpreter import enable

    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        enable()


def test_enable_refuses_with_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.interpreter import enable

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(RuntimeError, match="GPU"):
        enable()


def test_multiscale_retention_layer_runs_on_cpu() -> None:
    from fla.layers import MultiScaleRetention

    assert os.environ["TRITON_INTERPRET"] == "1"
    torch.manual_seed(0)
    layer = MultiScaleRetention(hidden_size=64, num_heads=2)
    x = torch.randn(1, 77, 64, requires_grad=True)
    out = layer(x)[0]
    out.square().sum().backward()
    assert out.shape == (1, 77, 64)
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert x.grad.abs().max() > 0


@pytest.mark.parametrize("T", [77], ids=lambda t: f"B2-T{t}-H2-K32")
def test_chunk_retention_matches_naive(T: int) -> None:
    """fla's chunk kernel (autotuner, loop-variable patches) vs its own PyTorch reference: 1e-5 abs."""
    from fla.ops.retention import chunk_retention
    from fla.ops.retention.naive import naive_retention

    torch.manual_seed(0)
    # [B, T, H, K]
    q, k, v = (torch.randn(2, T, 2, 32) for _ in range(3))
    out, _ = chunk_retention(q, k, v)
    expected = naive_retention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("T", [45, 77], ids=lambda t: f"B2-T{t}-H2-K20")
def test_additive_gate_scan_matches_logcumsumexp(T: int) -> None:
    """fla's GSA gate kernels (libdevice log1p, tuple and logaddexp associative scans) vs
    torch.logcumsumexp and autograd through it: 1e-5 abs on values and input gradients."""
    from fla.ops.gsa.gate import fused_additive_gate

    torch.manual_seed(0)
    # [B, T, H, K]
    x = torch.randn(2, T, 2, 20, requires_grad=True)
    k, g, _ = fused_additive_gate(x)
    # z_t = log sum_{s<=t} exp(x_s);  k_t = exp(x_t - z_t);  g_t = z_{t-1} - z_t, g_0 = 0.
    x_ref = x.detach().clone().requires_grad_(True)
    z = torch.logcumsumexp(x_ref, dim=1)
    k_ref = torch.exp(x_ref - z)
    g_ref = torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1] - z[:, 1:]], dim=1)
    torch.testing.assert_close(k, k_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(g, g_ref, atol=1e-5, rtol=0)

    dk, dg = torch.randn_like(k), torch.randn_like(g)
    (k * dk + g * dg).sum().backward()
    (k_ref * dk + g_ref * dg).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-5, rtol=0)
