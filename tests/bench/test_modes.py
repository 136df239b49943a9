"""The measuring modes (forward, train, stream) and the launch options, at tiny sizes on CPU."""

import pytest
import torch
from torch import nn

import mixers.stream
from bench.cases import Case, Sweep
from bench.measure import measure_cell
from bench.modes import launch, train


def _case(mixer="sa", kernel="sdpa", mode="forward", seconds=1, **options) -> Case:
    return Case(mixer, kernel, float(seconds), "fp32", 1, 32, 2, "cpu", mode, **options)


def _measure(case: Case):
    row = measure_cell(case, min_reps=2, budget_s=0.0)
    assert row.status == "ok", row.message
    return row


def test_train_row_states_its_procedure_and_measures_more_than_forward():
    forward, step = _measure(_case("sa", "naive")), _measure(_case("sa", "naive", "train"))
    assert step.mode == "train" and not step.optimizer_step
    assert "y.backward(c)" in step.procedure and "AdamW" not in step.procedure
    # Training keeps scores for the backward and adds gradients: more memory than inference.
    assert step.peak_above_bytes > forward.peak_above_bytes
    assert step.predicted_train_bytes > step.predicted_activation_bytes


def test_optimizer_step_runs_adamw_and_counts_its_moments_as_baseline():
    plain = _measure(_case("sa", "naive", "train"))
    with_adamw = _measure(_case("sa", "naive", "train", optimizer_step=True))
    assert with_adamw.optimizer_step and "AdamW step" in with_adamw.procedure
    # Two moments per parameter exist before the step: the total grows by about twice the weights.
    grown = (with_adamw.peak_bytes - with_adamw.peak_above_bytes) - (plain.peak_bytes - plain.peak_above_bytes)
    assert grown == pytest.approx(2 * plain.weight_bytes, rel=0.01)


def test_train_step_changes_the_weights_only_with_an_optimizer(monkeypatch):
    module = nn.Linear(32, 32, bias=False)
    module.mixer_name, module.kernel = "sa", "sdpa"
    before = module.weight.detach().clone()
    train.measure(_case("sa", "sdpa", "train"), module, 1, 0.0)
    assert torch.equal(module.weight, before) and module.weight.grad is not None
    train.measure(_case("sa", "sdpa", "train", optimizer_step=True), module, 1, 0.0)
    assert not torch.equal(module.weight, before)


class CumulativeStepper:
    """A fake recurrent form: y_t = x_t + sum of earlier frames; the state is that sum ([B, D])."""

    def __init__(self, grow: bool = False):
        self.grow, self.steps = grow, 0

    def prefill(self, x):
        return {"sum": x.sum(1), "frames": [x[:, t] for t in range(x.shape[1])] if self.grow else []}

    def step(self, state, x_t):
        self.steps += 1
        if self.grow:  # a buggy step that appends to the state it was given
            state["frames"].append(x_t)
        return x_t + state["sum"], {"sum": state["sum"] + x_t, "frames": state["frames"]}

    def state_bytes(self, state):
        return sum(t.numel() * t.element_size() for t in [state["sum"], *state["frames"]])


def test_stream_mode_times_steps_from_the_prefilled_state(monkeypatch):
    fake = CumulativeStepper()
    monkeypatch.setattr(mixers.stream, "stepper", lambda module: fake)
    row = _measure(_case("retnet", "torch", "stream", seconds=2))
    assert row.causal and row.state_bytes == 1 * 32 * 4  # [B, D] fp32
    assert row.n >= 2 and fake.steps >= row.n + row.warmup
    assert "same state" in row.procedure


def test_stream_step_that_grows_its_input_state_is_an_error_row(monkeypatch):
    monkeypatch.setattr(mixers.stream, "stepper", lambda module: CumulativeStepper(grow=True))
    row = measure_cell(_case("sa", "sdpa", "stream"), min_reps=2, budget_s=0.0)
    assert row.status == "error" and "changed the size of the state" in row.message


def test_stream_without_a_recurrent_form_is_an_error_row(monkeypatch):
    def refuse(module):
        raise ValueError(f"mixer {module.mixer_name!r} has no recurrent form here")

    monkeypatch.setattr(mixers.stream, "stepper", refuse)
    row = measure_cell(_case("kda", "torch", "stream"), min_reps=1, budget_s=0.0)
    assert row.status == "error" and "no recurrent form" in row.message


def test_stream_of_real_sa_records_a_kv_cache_growing_with_context():
    short, long = _measure(_case("sa", "naive", "stream", 1)), _measure(_case("sa", "naive", "stream", 2))
    assert short.causal and long.state_bytes > short.state_bytes >= 2 * short.frames * 32 * 4


def test_compile_wraps_the_mixer_and_its_first_call_holds_compilation(monkeypatch):
    # Inductor's code generation takes tens of seconds on a busy 2-core CPU; the plumbing is the same
    # with the eager backend (Dynamo still traces the mixer). The real backend is measured in the note.
    calls, real_compile = [], torch.compile

    def eager_compile(target):
        calls.append(target)
        return real_compile(target, backend="eager")

    monkeypatch.setattr(launch.torch, "compile", eager_compile)
    row = _measure(_case("sa", "sdpa", compile=True))
    assert row.compile and len(calls) == 1 and isinstance(calls[0], nn.Module)
    assert row.warmup_ms > row.median_ms  # Dynamo's tracing happened in the first call


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need an NVIDIA GPU")
@pytest.mark.parametrize("mode", ["forward", "train"])
def test_cuda_graph_replay_gives_the_eager_result(mode):
    row = measure_cell(Case("sa", "sdpa", 2.0, "fp32", 1, 64, 2, "cuda", mode, cuda_graphs=True), 2, 0.0)
    assert row.status == "ok", row.message
    assert row.cuda_graphs and "CUDA-graph replay" in row.procedure


def test_cuda_graphs_on_cpu_fail_before_any_work():
    with pytest.raises(ValueError, match="needs --device cuda"):
        Sweep(seconds=(1,), cuda_graphs=True).cases()
    with pytest.raises(ValueError, match="needs a CUDA device"):
        launch.captured(lambda: None, torch.device("cpu"))
