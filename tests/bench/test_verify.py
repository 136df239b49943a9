import pytest
from typer.testing import CliRunner

import mixers.softmax
from bench.cli import app
from bench.verify import check_pair, kernel_pairs, verify


def test_softmax_kernels_agree():
    (check,) = [c for c in verify(["sa"], [45], 64, 2) if c.length == 45]
    assert (check.kernel, check.reference) == ("naive", "sdpa")
    assert check.passed and check.max_abs < 1e-5 and check.grad_max_abs < 1e-5


def test_a_wrong_kernel_fails(monkeypatch):
    original = mixers.softmax.naive_attention
    monkeypatch.setattr(mixers.softmax, "naive_attention", lambda q, k, v, causal: original(q, k, v, causal) * 1.01)
    check = check_pair("sa", "naive", "sdpa", 45, 64, 2)
    assert check.passed is False and check.max_abs > 1e-4


def test_pairs_for_every_mixer_on_cpu():
    for name in mixers.names():
        for kernel, reference in kernel_pairs(name, "cpu"):
            assert kernel != reference and {kernel, reference} <= set(mixers.kernels(name))


def test_cli_table_and_exit_code():
    result = CliRunner().invoke(app, ["verify", "--mixers", "sa", "--lengths", "33", "--hidden", "32",
                                      "--no-interpret"])
    assert result.exit_code == 0, result.output
    assert "naive vs sdpa" in result.output and "pass" in result.output


@pytest.mark.parametrize("bad", ["--mixers nope", "--dtype fp8"])
def test_cli_bad_values(bad):
    result = CliRunner().invoke(app, ["verify", *bad.split(), "--no-interpret"])
    assert result.exit_code == 2
