"""RWKV-7, registered for fla's kernel only: it builds on CPU, the registry keeps it out of CPU defaults,
and fla's layer and kernels run under Triton's interpreter."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mixers
from tests.mixers import parity


def test_builds_on_cpu_with_the_configured_shape():
    layer = mixers.build("rwkv7", 256, 4, kernel="fla", device="cpu")  # fla's init loops in Python: small
    assert (layer.num_heads, layer.head_dim, layer.layer_idx) == (4, 64, 0)
    assert not hasattr(layer, "v_lora")  # the first layer has no value residual
    assert mixers.cost("rwkv7", 100, 256, 4, batch=2, dtype_bytes=2, kernel="fla").weight_bytes == 2 * sum(
        p.numel() for p in layer.parameters())


def test_registry_marks_it_fla_only_and_keeps_it_out_of_cpu_defaults():
    assert mixers.kernels("rwkv7") == ("fla",) and mixers.fla_only("rwkv7")
    assert "rwkv7" in mixers.names(include_fla_only=True) and "rwkv7" not in mixers.names(include_fla_only=False)
    assert not mixers.fla_only("gla")
    if not torch.cuda.is_available():
        assert "rwkv7" not in mixers.names()
    with pytest.raises(ValueError, match=r"only fla's kernel \(no torch twin yet\), which needs CUDA"):
        mixers.resolve_kernel("rwkv7", "auto", "cpu")
    with pytest.raises(ValueError, match="its kernels: fla"):
        mixers.build("rwkv7", 64, 2, kernel="torch")
    assert mixers.parse_spec("rwkv7:fla") == ("rwkv7", "fla")


def test_rejects_unknown_options():
    with pytest.raises(ValueError, match="unknown RWKV-7 options"):
        mixers.build("rwkv7", 64, 2, kernel="fla", head_dim=16)
    with pytest.raises(ValueError, match="at least 2"):
        mixers.build("rwkv7", 64, 2, kernel="fla", num_hidden_layers=1)


def _layer():
    torch.manual_seed(0)
    layer = mixers.build("rwkv7", 64, 2, kernel="fla", device="cpu")
    with torch.no_grad():
        layer.o_proj.weight.normal_(0, 0.1)  # fla initialises it to zeros
    return layer


@pytest.mark.interpreter
def test_fla_layer_runs_under_the_interpreter():
    """Forward of fla's layer (its chunk kernels above 64 tokens) on CPU, T = 77; T = 45 runs in the
    next test. (The backward runs too, but its interpreted kernels add ~10 s: left out.)"""
    layer = _layer()
    x = torch.randn(1, 77, 64)
    with torch.no_grad():
        y = layer(x)
    assert y.shape == x.shape and torch.isfinite(y).all() and y.abs().max() > 0


@pytest.mark.interpreter
def test_fla_chunk_and_fused_recurrent_paths_agree():
    """In eval mode under no_grad at T < 64 fla runs its fused recurrent kernel, else chunk: 1e-4 of scale."""
    layer = _layer()
    x = torch.randn(2, 45, 64)
    with torch.no_grad():
        chunk = layer(x)
        recurrent = layer.eval()(x)
    parity.assert_within(recurrent, chunk, parity.FP32, "fused recurrent output")


@pytest.mark.interpreter
def test_fla_chunk_kernel_matches_fla_naive_dplr_recurrence():
    """The layer's core, chunk_rwkv7 (S_t = S_{t-1}(diag(e^w) + a b^T) + k^T v with a = -kk, b = kk * a),
    against fla's step-by-step dplr_recurrence (which scales q by K^-1/2): 1e-4 of scale."""
    from fla.ops.generalized_delta_rule.dplr.naive import dplr_recurrence
    from fla.ops.rwkv7 import chunk_rwkv7

    gen = torch.Generator().manual_seed(0)
    B, T, H, K = 1, 77, 2, 32
    r, k, v = (torch.randn(B, T, H, K, generator=gen) for _ in range(3))
    w = -0.6065 * torch.rand(B, T, H, K, generator=gen)
    kk = F.normalize(torch.randn(B, T, H, K, generator=gen), dim=-1)
    a = torch.rand(B, T, H, K, generator=gen)
    o, S = chunk_rwkv7(r, w, k, v, -kk, kk * a, scale=1.0, output_final_state=True, safe_gate=True,
                       lower_bound=-0.6065306597126334, chunk_size=64)
    heads_first = [x.transpose(1, 2) for x in (r * K**0.5, k, v, -kk, kk * a, w)]  # [B, H, T, K]
    o_ref, S_ref = dplr_recurrence(*heads_first)
    parity.assert_within(o, o_ref.transpose(1, 2), parity.FP32, "output")
    parity.assert_within(S, S_ref, parity.FP32, "final state")
