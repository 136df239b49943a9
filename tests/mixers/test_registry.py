import pytest
import torch

import mixers


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match=r"unknown mixer 'nope'; known mixers: .*sa"):
        mixers.build("nope")


def test_unknown_kernel_lists_valid_kernels():
    with pytest.raises(ValueError, match=r"no kernel 'flash'; its kernels: sdpa, naive"):
        mixers.build("sa", 64, 4, kernel="flash")


def test_parse_spec():
    assert mixers.parse_spec("sa:naive") == ("sa", "naive")
    assert mixers.parse_spec(" sa ") == ("sa", "auto")


def test_auto_on_cpu_never_picks_fla():
    for name in mixers.names():
        assert mixers.resolve_kernel(name, "auto", "cpu") != "fla"


def test_bad_width():
    with pytest.raises(ValueError, match="multiple of num_heads"):
        mixers.build("sa", 100, 3)


@pytest.mark.parametrize("name", mixers.names())
def test_every_mixer_keeps_shape_and_reports_cost(name):
    module = mixers.build(name, 64, 2, device="cpu")
    x = torch.randn(2, 37, 64)
    with torch.no_grad():
        assert module(x).shape == x.shape
    cost = mixers.cost(name, 37, 64, 2)
    assert cost.flops > 0 and cost.activation_bytes > 0 and cost.weight_bytes > 0
