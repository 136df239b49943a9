"""What the twins of the fla layers added beyond the paper (GLA, DeltaNet, Gated DeltaNet, HGRN2, Mamba2)
share, one case per mixer: the reference kernel over segments, segments against one pass, bf16, fla's layer
under Triton's interpreter, input checks and the cost model. Each core against its own reference (fla's
naive op, the paper's recurrence), the head sizes, state bytes and mixer-specific cases stay in
test_<name>.py."""

from __future__ import annotations

import pytest
import torch

import mixers
from tests.mixers import parity

NAMES = ["gla", "deltanet", "gated_deltanet", "hgrn2", "mamba2"]

OPTIONS = {"gated_deltanet": dict(head_dim=32)}
"""Interpreter-sized heads (Gated DeltaNet's default head_dim 256 makes the interpreted kernels ~10x slower)."""


def _gla_norm(layer):
    layer.g_norm_swish_gate.weight.uniform_(0.5, 1.5)  # so the norm weight's use and gradient count


def _delta_norm(layer):
    layer.o_norm.weight.uniform_(0.5, 1.5)


def _hgrn2_norm(layer):
    layer.g_norm.weight.uniform_(0.5, 1.5)


def _mamba2_norm_and_skip(layer):
    layer.norm.weight.uniform_(0.5, 1.5)
    layer.D.uniform_(0.5, 1.5)


INIT = {"gla": _gla_norm, "deltanet": _delta_norm, "gated_deltanet": _delta_norm, "hgrn2": _hgrn2_norm,
        "mamba2": _mamba2_norm_and_skip}
"""Non-trivial weights fla initialises to ones (or zeros): their use and gradients are then exercised."""


def _cases(lengths: dict[str, list[int]], dims: str):
    return [pytest.param(name, T, id=f"{name}-{dims.format(T=T)}") for name, Ts in lengths.items() for T in Ts]


@pytest.mark.parametrize("name", NAMES)
def test_auto_is_the_twin_on_cpu(name):
    assert mixers.build(name, 64, 2, device="cpu").kernel == "torch"


@pytest.mark.parametrize("name, T", _cases({"gla": [1, 130, 300], "deltanet": [1, 130, 300],
                                            "gated_deltanet": [1, 130, 300], "hgrn2": [1, 130, 300],
                                            "mamba2": [1, 200]}, "B2-T{T}-D64-H2-segments128"))
def test_twin_matches_reference_kernel(name, T):
    """Same projections, fla's naive core (per-token loops for the delta rules and Mamba2) vs our chunked
    one, in segments of 128 (the state and any convolution's context carried across): 1e-4 of scale."""
    parity.check_reference_kernel(name, T, parity.FP32, hidden=64, heads=2, init=INIT[name], segment=128,
                                  **OPTIONS.get(name, {}))


@pytest.mark.parametrize("name", NAMES)
def test_segments_do_not_change_the_layer(name):
    parity.check_segments_match_whole(name, init=INIT[name], **OPTIONS.get(name, {}))


@pytest.mark.parametrize("name", NAMES)
def test_bf16_close_to_fp32(name):
    """bf16 rounds the projections, gates and output (~4e-3 relative each): 3e-2 of max(1, scale)."""
    parity.check_bf16_close_to_fp32(name, parity.of_scale(3e-2, floor=1.0), **OPTIONS.get(name, {}))


@pytest.mark.interpreter
@pytest.mark.parametrize("name, T", _cases({"gla": [45, 77], "gated_deltanet": [77], "hgrn2": [45, 77],
                                            "mamba2": [45, 77]}, "B1-T{T}-D64-H2"))
def test_twin_matches_fla_layer_forward_and_gradients(name, T):
    """fla's layer run by Triton's interpreter vs the twin with the same weights: output and all gradients
    within 1e-4 of their scale. GLA and HGRN2 switch from fused_recurrent (T=45) to chunk (T=77) at 64;
    Gated DeltaNet runs chunk whenever autograd is on (A_log and dt_bias gradients included); Mamba2 runs
    its torch_forward SSD in chunks of 256 and its Triton gated norm. DeltaNet: test_deltanet.py."""
    fla_layer, twin = parity.same_weights(name, "fla", "torch", init=INIT[name], **OPTIONS.get(name, {}))
    parity.check_forward_and_gradients(fla_layer, twin, torch.randn(1, T, 64), parity.FP32, parity.FP32,
                                       parity.FP32)


@pytest.mark.parametrize("name", NAMES)
def test_rejects_wrong_input(name):
    twin = mixers.build(name, 64, 2, kernel="torch", **OPTIONS.get(name, {}))
    with pytest.raises(ValueError, match="expected input"):
        twin(torch.randn(1, 5, 63))
    with pytest.raises(ValueError, match="expected input"):
        twin(torch.randn(1, 0, 64))


@pytest.mark.parametrize("name, options, message", [
    ("gla", dict(use_short_conv=True), "unknown GLA options"),
    ("deltanet", dict(use_gate=True), "unknown DeltaNet options"),
    ("gated_deltanet", dict(num_v_heads=4), "unknown Gated DeltaNet options"),
    ("hgrn2", dict(expand_ratio=128), "unknown HGRN2 options"),
    ("mamba2", dict(n_groups=2), "unknown Mamba2 options"),
    ("gated_deltanet", dict(head_dim=3, expand_v=0.5), "must be an integer"),
], ids=[*NAMES, "gated_deltanet-head-sizes"])
def test_rejects_unknown_options(name, options, message):
    with pytest.raises(ValueError, match=message):
        mixers.build(name, 64, 2, kernel="torch", **options)


@pytest.mark.parametrize("name", NAMES)
def test_cost_counts_weights(name):
    parity.check_weight_bytes(name)


@pytest.mark.parametrize("name, length, hidden, options", [
    ("gla", 1500, 256, {}),  # two segments of 1024, the second beside the whole output and the carried state
    ("deltanet", 2200, 128, {}),  # two segments of 2048 (the single-segment phase: gated_deltanet, same model)
    ("gated_deltanet", 1000, 256, dict(head_dim=64)),  # one segment, heads of 64 keys and 128 values
    ("hgrn2", 1500, 256, {}),  # two segments of 1024
    ("mamba2", 1500, 256, {}),  # two segments of 1024
], ids=NAMES)
def test_cost_model_predicts_measured_peak(name, length, hidden, options):
    """The cost model's activation bytes against the CPU probe's peak of one warm inference call: within 25%."""
    parity.check_cost_model(name, length, hidden=hidden, heads=4, warm_up=True, **options)
