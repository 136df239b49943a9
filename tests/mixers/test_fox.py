"""FoX twin: core against fla's naive op, SDPA and finite differences; layer against fla's own layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mixers
from mixers.cores import blockwise_fox as fox_attention
from mixers.cores.blockwise_fox import forgetting_attention
from tests.mixers import parity


def naive(q, k, v, g):
    """fla's reference op (L x L, fp32), fed our head-major layout; returns [B, T, H, V]."""
    from fla.ops.forgetting_attn.naive import naive_forgetting_attn

    return naive_forgetting_attn(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), g.transpose(1, 2))


def core_inputs(T, gate_logit=1.0, dtype=torch.float32, B=2, H=3, K=40, V=24, seed=0):
    """Unit-scale q, k, v; log forget gates logsigmoid(gate_logit + N(0, 1))."""
    gen = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(B, H, T, K, generator=gen, dtype=dtype) for _ in range(2))
    v = torch.randn(B, H, T, V, generator=gen, dtype=dtype)
    g = F.logsigmoid(gate_logit + torch.randn(B, H, T, generator=gen, dtype=dtype))
    return q, k, v, g


class BlockCounter:
    """Counts the score tiles the core computes, to show that skipping happened."""

    def __init__(self, monkeypatch):
        self.tiles = 0
        original = fox_attention._Tiles.scores

        def counted(tiles, *args):
            self.tiles += 1
            return original(tiles, *args)

        monkeypatch.setattr(fox_attention._Tiles, "scores", counted)


# Gate logits: +1 keeps most of the past (no block skipped at these lengths); -3 forgets ~3 nats a
# frame, so with 16 x 16 blocks most key blocks are skipped.
@pytest.mark.parametrize("gate_logit", [1.0, -3.0], ids=["keep", "forget"])
@pytest.mark.parametrize("T", [1, 63, 130], ids=lambda t: f"T{t}")
def test_core_matches_fla_naive(T, gate_logit):
    q, k, v, g = core_inputs(T, gate_logit)
    for block_q, block_k in [(16, 16), (fox_attention.BLOCK_Q, fox_attention.BLOCK_K)]:
        o = forgetting_attention(q, k, v, g, block_q=block_q, block_k=block_k)
        # fp32 at unit-scale inputs: 1e-4 absolute.
        torch.testing.assert_close(o, naive(q, k, v, g), atol=1e-4, rtol=0)


@pytest.mark.parametrize("T", [63, 130], ids=lambda t: f"T{t}")
def test_core_gradients_match_fla_naive(T):
    inputs = [t.requires_grad_() for t in core_inputs(T, gate_logit=-1.0)]
    o = forgetting_attention(*inputs, block_q=16, block_k=32)
    reference = naive(*inputs)
    do = torch.randn(o.shape, generator=torch.Generator().manual_seed(1))
    ours, theirs = torch.autograd.grad(o, inputs, do), torch.autograd.grad(reference, inputs, do)
    for name, a, b in zip("qkvg", ours, theirs, strict=True):
        # fp32: 1e-4 absolute for q, k, v; g's gradient sums over up to T rows, 1e-4 of its scale.
        torch.testing.assert_close(a, b, atol=1e-4 * max(1.0, b.abs().max().item()), rtol=0, msg=name)


def test_core_gradcheck_fp64():
    """Finite differences in fp64, over several query and key blocks, with skipping active."""
    q, k, v, g = core_inputs(37, gate_logit=-2.0, dtype=torch.float64, B=1, H=2, K=5, V=3)
    inputs = [t.requires_grad_() for t in (q, k, v, g)]
    assert torch.autograd.gradcheck(lambda *x: forgetting_attention(*x, block_q=8, block_k=6), inputs,
                                    fast_mode=True)


@pytest.mark.parametrize("T", [1, 77, 300], ids=lambda t: f"T{t}")
def test_open_gates_are_causal_sdpa(T):
    """log forget = 0 removes the bias: exactly causal softmax attention (PyTorch SDPA)."""
    q, k, v, _ = core_inputs(T, K=40, V=40)
    o = forgetting_attention(q, k, v, torch.zeros(q.shape[:3]), block_q=32, block_k=48)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2)
    torch.testing.assert_close(o, expected, atol=1e-5, rtol=0)


def test_layer_with_saturated_gates_is_causal_sdpa():
    torch.manual_seed(0)
    twin = mixers.build("fox", 96, 3, kernel="torch")
    with torch.no_grad():
        twin.f_proj.weight.zero_()
        twin.f_proj.bias.fill_(40.0)  # sigmoid(40) rounds to 1 in fp32: log forget 0
        x = torch.randn(2, 101, 96)
        q, k, v = (p(x).unflatten(-1, (3, 32)).transpose(1, 2) for p in (twin.q_proj, twin.k_proj, twin.v_proj))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).flatten(-2)
        torch.testing.assert_close(twin(x), twin.o_proj(o), atol=1e-5, rtol=0)


@pytest.mark.parametrize("gate_logit", [2.0, -3.0], ids=["keep", "forget"])
def test_block_sizes_agree(gate_logit):
    q, k, v, g = core_inputs(203, gate_logit)
    reference = forgetting_attention(q, k, v, g, block_q=203, block_k=203, skip=False)
    for block_q, block_k in [(1, 64), (64, 1), (7, 5), (100, 30), (64, 256)]:
        o = forgetting_attention(q, k, v, g, block_q=block_q, block_k=block_k)
        # Only the order of fp32 sums differs: 1e-5 absolute.
        torch.testing.assert_close(o, reference, atol=1e-5, rtol=0, msg=f"{block_q}x{block_k}")


def test_skipping_is_exact(monkeypatch):
    q, k, v, g = core_inputs(600, gate_logit=-3.0)
    counter = BlockCounter(monkeypatch)
    skipped = forgetting_attention(q, k, v, g, block_q=16, block_k=16)
    visited_with_skip, counter.tiles = counter.tiles, 0
    full = forgetting_attention(q, k, v, g, block_q=16, block_k=16, skip=False)
    assert counter.tiles == sum(i // 16 + 1 for i in range(0, 600, 16))  # every causal tile
    # ~3 nats of forgetting a frame: only the last ~40 keys of each query count.
    assert visited_with_skip < counter.tiles / 3
    assert torch.equal(skipped, full)


def test_skipping_keeps_gradients_exact(monkeypatch):
    inputs = [t.requires_grad_() for t in core_inputs(150, gate_logit=-3.0)]
    do = torch.randn(2, 150, 3, 24, generator=torch.Generator().manual_seed(1))
    grads = [torch.autograd.grad(forgetting_attention(*inputs, block_q=16, block_k=16, skip=s), inputs, do)
             for s in (True, False)]
    for a, b in zip(*grads, strict=True):
        assert torch.equal(a, b)


def test_bf16_core_matches_fla_naive():
    q, k, v, g = core_inputs(130, gate_logit=0.0, dtype=torch.bfloat16)
    o = forgetting_attention(q, k, v, g)
    assert o.dtype == torch.bfloat16
    # fp32 inside, one rounding of the output to bf16 (8-bit mantissa, |o| < 4): 2e-2 absolute.
    torch.testing.assert_close(o.float(), naive(q.float(), k.float(), v.float(), g.float()), atol=2e-2, rtol=0)


def test_bf16_layer_close_to_fp32():
    torch.manual_seed(0)
    twin = mixers.build("fox", 64, 2, kernel="torch")
    x = torch.randn(1, 150, 64)
    with torch.no_grad():
        reference = twin(x)
        low = twin.bfloat16()(x.bfloat16()).float()
    # bf16 projections and output, fp32 inside the core: 2e-2 of the output scale.
    assert (low - reference).abs().max() <= 2e-2 * reference.abs().max()


@pytest.mark.parametrize("T", [1, 63, 130], ids=lambda t: f"T{t}")
def test_twin_matches_reference_kernel(T):
    """The same projections around fla's naive_forgetting_attn: 1e-4 absolute."""
    parity.check_reference_kernel("fox", T, parity.absolute(1e-4))


def test_state_dict_matches_fla_layer():
    parity.check_state_dict("fox")


def test_rejects_bad_input():
    twin = mixers.build("fox", 64, 2, kernel="torch")
    with pytest.raises(ValueError, match="expected input"):
        twin(torch.randn(1, 5, 32))
    with pytest.raises(ValueError, match="supports options"):
        mixers.build("fox", 64, 2, kernel="torch", qk_norm=True)
    q, k, v, g = core_inputs(10)
    with pytest.raises(ValueError, match="expected q, k"):
        forgetting_attention(q, k, v, g[:, :, :5])
    with pytest.raises(ValueError, match="block sizes"):
        forgetting_attention(q, k, v, g, block_q=0)


# --- fla's own layer, run by Triton's interpreter on CPU ----------------------------------------
# fla's parallel attention works in query tiles of 128 and key tiles of 32 (first autotune config).


def _check_forward_and_gradients(fla_layer, twin, x):
    """Output and input gradient: 1e-4 absolute at unit-scale inputs. Parameter gradients sum over
    all B*T tokens: 1e-5 of the largest entry plus 2e-5 absolute (fla's own naive op differs from
    fla's kernel by up to 1e-5 in these sums)."""
    parity.check_forward_and_gradients(fla_layer, twin, x, parity.absolute(1e-4), parity.absolute(1e-4),
                                       parity.relative(1e-5, 2e-5))


@pytest.mark.interpreter
@pytest.mark.parametrize("T", [45, 77], ids=lambda t: f"T{t}")
def test_twin_matches_fla_layer_forward_and_gradients(T):
    _check_forward_and_gradients(*parity.fla_pair("fox"), torch.randn(2, T, 64))


@pytest.mark.interpreter
def test_twin_skipping_blocks_matches_fla_layer(monkeypatch):
    """Strong forgetting (log forget ~ -6 a frame) with 8 x 8 blocks: most key blocks skipped."""
    fla_layer, twin = parity.fla_pair("fox", hidden=128, block_q=8, block_k=8)
    with torch.no_grad():
        for layer in (fla_layer, twin):
            layer.f_proj.bias.fill_(-6.0)
    x = torch.randn(2, 77, 128)
    _check_forward_and_gradients(fla_layer, twin, x)
    counter = BlockCounter(monkeypatch)
    with torch.no_grad():
        twin(x)
    assert counter.tiles < sum(i // 8 + 1 for i in range(0, 77, 8))  # fewer than every causal tile


# --- cost model ---------------------------------------------------------------------------------


@pytest.mark.parametrize("frames", [4999, pytest.param(9999, marks=pytest.mark.slow)], ids=lambda f: f"L{f}")
def test_cost_model_predicts_measured_peak(frames):
    parity.check_cost_model("fox", frames)


def test_cost_flops_count_causal_pairs():
    small, double = (mixers.cost("fox", t, 256, 4, kernel="torch") for t in (20000, 40000))
    # Attention dominates at these lengths: doubling T nearly quadruples the FLOPs.
    assert 3.8 < double.flops / small.flops < 4.0
    # The KV cache grows with T: keys, values and one fp32 forget gate per head and frame.
    assert double.state_bytes == 2 * small.state_bytes == 2 * (2 * 20000 * 256 * 4 + 20000 * 4 * 4)
