import pytest
from typer.testing import CliRunner

import mixers
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


def test_a_kernel_that_raises_is_a_fail_and_the_run_goes_on(monkeypatch):
    def broken(q, k, v, causal):
        raise RuntimeError("kernel exploded\nsecond line")

    monkeypatch.setattr(mixers.softmax, "naive_attention", broken)
    checks = verify(["sa"], [33, 45], 64, 2)
    assert [(c.length, c.passed, c.note) for c in checks] == [
        (33, False, "raised RuntimeError: kernel exploded"), (45, False, "raised RuntimeError: kernel exploded")]


@pytest.mark.parametrize("bad", ["--mixers nope", "--dtype fp8", "--lengths 45,-3", "--lengths 0"])
def test_cli_bad_values(bad):
    result = CliRunner().invoke(app, ["verify", *bad.split(), "--no-interpret"])
    assert result.exit_code == 2


def test_fla_only_mixer_gets_a_row_saying_so():
    (check,) = verify(["rwkv7"], [45], 64, 2)
    assert (check.mixer, check.passed, check.note) == ("rwkv7", None, "fla only (no torch twin)")
    result = CliRunner().invoke(app, ["verify", "--mixers", "rwkv7", "--no-interpret"])
    assert result.exit_code == 0, result.output
    assert "fla only (no torch" in result.output


def test_default_mixer_list_includes_fla_only_mixers(monkeypatch):
    seen = []
    monkeypatch.setattr("bench.verify.plan", lambda names, *a, **k: seen.extend(names) or [])
    result = CliRunner().invoke(app, ["verify", "--no-interpret"])
    assert result.exit_code == 0, result.output
    assert seen == mixers.names(include_fla_only=True) and "rwkv7" in seen


@pytest.mark.interpreter
def test_fla_refusal_is_reported_not_failed():
    """fla 0.6's DeltaNet chunk kernel refuses fp32 (T > 64 takes it): a row with fla's message."""
    check = check_pair("deltanet", "torch", "fla", 77, 32, 2)
    assert check.passed is None and check.max_abs is None
    assert check.note.startswith("fla refused: AssertionError") and "float32" in check.note


def test_a_one_kernel_mixer_says_it_has_one_kernel():
    (check,) = verify(["reslstm"], [45], 64, 2)
    assert (check.mixer, check.passed) == ("reslstm", None)
    assert check.note == "one kernel (torch): nothing to compare it with"
    result = CliRunner().invoke(app, ["verify", "--mixers", "reslstm", "--no-interpret"])
    assert result.exit_code == 0 and "one kernel (torch)" in result.output and "no second" not in result.output


def test_a_second_kernel_that_cannot_run_here_is_named_as_such(monkeypatch):
    """A twin whose only partner is fla, on a CPU that does not interpret Triton."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setattr(mixers, "kernels", lambda name: ("fla", "torch"))
    (check,) = verify(["kda"], [45], 64, 2, device="cpu")
    assert check.passed is None and check.note == "no second kernel runnable here (fla needs CUDA or --interpret)"
