"""FoX's ``flex`` kernel (FlexAttention): against fla's naive op and the ``torch`` twin, its CPU limits,
and ``auto``'s choice between fla and flex from a device's shared memory.

Compiling FlexAttention on CPU takes tens of seconds, once per process and shape family (the first
length, then one symbolic compile for every longer one, one for single-block lengths < 128), so
the compiled checks share a few lengths and are marked slow.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import mixers
from bench.cases import Sweep
from bench.measure import one_line
from bench.verify import check_pair, kernel_pairs
from mixers.cores.flex_fox import _block_mask, flex_forgetting_attention
from mixers.fla_memory import fox_tiles
from tests.mixers import parity
from tests.mixers.test_fox import core_inputs, naive

H200 = 232_448
A100 = 166_912


@pytest.mark.slow
@pytest.mark.parametrize("gate_logit", [1.0, -3.0], ids=["keep", "forget"])
@pytest.mark.parametrize("T", [77, 203, 333], ids=lambda t: f"B2-T{t}-H3-K40-V24")
def test_core_matches_fla_naive(T, gate_logit):
    q, k, v, g = core_inputs(T, gate_logit)
    with torch.no_grad():
        o = flex_forgetting_attention(q, k, v, g)
    assert o.shape == (2, T, 3, 24)
    # fp32 at unit-scale inputs, tiles summed in another order than fla's L x L softmax: 1e-4 absolute.
    parity.assert_within(o, naive(q, k, v, g), parity.absolute(1e-4), "flex core")


@pytest.mark.slow
def test_layer_matches_torch_twin_and_reference():
    """Same weights in three kernels, T = 203 (not a multiple of FlexAttention's 128 or the twin's
    64 x 256 blocks), 3 heads of 32: 1e-4 of max(1, scale)."""
    flex, twin, reference = parity.same_weights("fox", "flex", "torch", "reference", hidden=96, heads=3)
    x = torch.randn(2, 203, 96)
    with torch.no_grad():
        y = flex(x)
        parity.assert_within(y, twin(x), parity.FP32, "flex vs torch")
        parity.assert_within(y, reference(x), parity.FP32, "flex vs reference")


@pytest.mark.slow
def test_bf16_layer_close_to_fp32():
    (flex,) = parity.same_weights("fox", "flex", hidden=96, heads=3)
    x = torch.randn(1, 203, 96)
    with torch.no_grad():
        expected = flex(x)
        low = flex.bfloat16()(x.bfloat16())
    assert low.dtype == torch.bfloat16
    # bf16 projections and output, fp32 gate sums: 2e-2 of the output scale.
    parity.assert_within(low, expected, parity.of_scale(2e-2, floor=0.0), "bf16 output")


def test_flex_is_offered_and_loads_fla_weights_strictly():
    assert "flex" in mixers.kernels("fox")
    fla_layer = mixers.build("fox", 1024, 4, kernel="fla")
    flex = mixers.build("fox", 1024, 4, kernel="flex")
    assert list(flex.state_dict()) == list(fla_layer.state_dict())
    flex.load_state_dict(fla_layer.state_dict(), strict=True)


def test_the_cached_block_mask_is_never_an_inference_tensor():
    """A forward cell runs under inference_mode and caches the mask; a train cell at the same length then
    hands it to FlexAttention's backward, which cannot save inference tensors (CUDA)."""
    with torch.inference_mode():
        mask = _block_mask(1234, torch.device("cpu"))
    tensors = [t for t in mask.as_tuple() if isinstance(t, torch.Tensor)]
    assert tensors and not any(t.is_inference() for t in tensors)


def test_flex_calls_run_with_dynamos_eager_fallback_off():
    """Past the recompile limit dynamo would run FlexAttention eagerly (T x T scores under the name flex):
    each call turns that into an error, and leaves the process's setting as it found it."""
    from mixers.cores.flex_fox import NO_EAGER_FALLBACK, _no_eager_fallback

    config = torch._dynamo.config
    assert hasattr(config, NO_EAGER_FALLBACK)  # torch 2.13 has the switch: the guard is live here
    before = getattr(config, NO_EAGER_FALLBACK)
    seen = _no_eager_fallback(lambda: getattr(config, NO_EAGER_FALLBACK))
    assert seen is True and getattr(config, NO_EAGER_FALLBACK) == before

    def raising():
        raise RuntimeError("recompile limit")

    with pytest.raises(RuntimeError):
        _no_eager_fallback(raising)
    assert getattr(config, NO_EAGER_FALLBACK) == before


def test_without_cuda_auto_keeps_fla():
    """A library call naming cuda on a machine without one resolves as for every mixer (fla), not by asking
    a device that is not there."""
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    assert mixers.resolve_kernel("fox", "auto", "cuda") == "fla"


def test_training_on_cpu_is_a_one_line_error():
    flex = mixers.build("fox", 64, 2, kernel="flex")
    assert not flex.backward_available("cpu") and flex.backward_available("cuda")
    with pytest.raises(NotImplementedError, match="inference-only on CPU") as caught:
        flex(torch.randn(1, 10, 64))  # parameters require grad: autograd would record the call
    assert "\n" not in one_line(caught.value) and "fox:torch" in one_line(caught.value)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="FlexAttention has no backward on CPU (torch raises NotImplementedError)")
def test_gradients_match_torch_twin_on_cuda():
    """Input and parameter gradients, fp32 (IEEE matmuls), T = 203, 3 heads of 32: 1e-4 of max(1, scale)."""
    flex, twin = (m.cuda() for m in parity.same_weights("fox", "flex", "torch", hidden=96, heads=3))
    x = torch.randn(2, 203, 96, device="cuda")
    dy = torch.randn(x.shape, device="cuda", generator=torch.Generator("cuda").manual_seed(1))
    grads = []
    for module in (flex, twin):
        xi = x.clone().requires_grad_()
        module(xi).backward(dy)
        grads.append([xi.grad, *(p.grad for p in module.parameters())])
    for name, a, b in zip(["input", *dict(twin.named_parameters())], *grads, strict=True):
        parity.assert_within(a, b, parity.FP32, name)


# --- auto: fla or flex, from fla's tiles and the device's shared memory --------------------------


def test_fla_tiles_reproduce_its_shared_memory_failures_on_h200():
    """The numbers fla's kernel reported on an H200 (Triton 3.6), heads of 256."""
    assert fox_tiles.fla_tiles(256, 256, H200) == fox_tiles.Tiles(rows=128, keys=64, head_k=256, head_v=256)
    assert fox_tiles.fla_shared_bytes(256, 256, 4, H200) == 525_312
    assert fox_tiles.fla_shared_bytes(256, 256, 2, H200) == 263_168
    # What Triton 3.9's compiler allocates for sm_90 at heads of 128 and 64 in fp32 (compiled on CPU).
    assert fox_tiles.fla_shared_bytes(128, 128, 4, H200) == 263_168
    assert fox_tiles.fla_shared_bytes(64, 64, 4, H200) == 132_096


def test_fla_tiles_follow_the_device_class_and_length():
    assert fox_tiles.fla_tiles(256, 256, A100) == fox_tiles.Tiles(128, 32, 256, 128)
    assert fox_tiles.fla_tiles(256, 256, 101_376) == fox_tiles.Tiles(128, 32, 256, 64)
    assert fox_tiles.fla_tiles(40, 24, H200, length=20) == fox_tiles.Tiles(128, 32, 64, 32)


@pytest.fixture
def fake_gpu(monkeypatch):
    """CUDA device properties with a chosen opt-in shared memory per block, on any machine."""
    def install(shared: int) -> None:
        props = SimpleNamespace(shared_memory_per_block_optin=shared)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index=None: props)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    return install


@pytest.mark.parametrize(("shared", "hidden", "dtype_bytes", "expected"), [
    (H200, 1024, 4, "flex"),  # the paper's heads of 256: 525,312 bytes needed
    (H200, 1024, 2, "flex"),  # 263,168
    (H200, 256, 4, "fla"),  # heads of 64: 132,096
    (A100, 1024, 4, "flex"),  # 279,552 > 166,912
    (A100, 1024, 2, "fla"),  # 140,288
    (H200, 2048, 2, "flex"),  # heads of 512: fla asserts K <= 256
], ids=["H200-fp32-K256", "H200-bf16-K256", "H200-fp32-K64", "A100-fp32-K256", "A100-bf16-K256", "H200-K512"])
def test_auto_picks_flex_where_fla_cannot_fit(fake_gpu, shared, hidden, dtype_bytes, expected):
    fake_gpu(shared)
    assert mixers.resolve_kernel("fox", "auto", "cuda", hidden, 4, dtype_bytes) == expected
    # other mixers are untouched; an explicit kernel is kept even where it will fail
    assert mixers.resolve_kernel("kda", "auto", "cuda", hidden, 4, dtype_bytes) == "fla"
    assert mixers.resolve_kernel("fox", "fla", "cuda", hidden, 4, dtype_bytes) == "fla"


def test_sweep_cases_record_the_kernel_auto_chose_per_dtype(fake_gpu):
    fake_gpu(A100)
    cases = Sweep(seconds=(10,), mixers=("fox", "fox:fla"), dtypes=("fp32", "bf16"), device="cuda").cases()
    # bf16's auto is fla, which "fox:fla" asks for again: one cell, not two
    assert [(c.spec, c.dtype) for c in cases] == [("fox:flex", "fp32"), ("fox:fla", "bf16"), ("fox:fla", "fp32")]


def test_flex_cost_is_linear_in_length():
    short, long = (mixers.cost("fox", t, 1024, 4, kernel="flex") for t in (10_000, 20_000))
    # no T x T term: six token tensors and four fp32 [B, H, T] gate tensors per frame
    assert long.activation_bytes == 2 * short.activation_bytes == 2 * (6 * 10_000 * 1024 * 4 + 4 * 10_000 * 4 * 4)


def test_verify_pairs_flex_with_the_reference():
    assert ("flex", "reference") in kernel_pairs("fox", "cpu")


@pytest.mark.slow
def test_verify_checks_flex_output_alone_on_cpu():
    check = check_pair("fox", "flex", "reference", 150, 64, 2)
    assert check.passed and check.grad_max_abs is None and check.note.startswith("output only")
