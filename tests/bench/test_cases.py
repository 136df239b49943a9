import pytest

import mixers
from bench.cases import PRESETS, Sweep, default_mixers, dtype_name, frames, preset


@pytest.mark.parametrize("seconds, expected", [(10, 499), (400, 19999), (0.025, 1), (5.5, 274)])
def test_frames_follow_wav2vec2_front_end(seconds, expected):
    assert frames(seconds) == expected


def test_too_short_audio_is_rejected():
    with pytest.raises(ValueError, match="at least 0.025 s"):
        frames(0.01)


def test_paper_preset_matches_figure_2():
    paper = PRESETS["paper"]
    assert paper.seconds == (10, 25, 50, 100, 200, 300, 400)
    assert (paper.dtypes, paper.batches, paper.modes) == (("fp32",), (1,), ("forward",))
    assert (paper.hidden, paper.heads) == (1024, 4)


def test_default_mixers_cover_both_softmax_kernels_and_every_registered_mixer():
    specs = default_mixers()
    assert specs[:2] == ("sa:sdpa", "sa:naive")
    assert {spec.split(":")[0] for spec in specs} == set(mixers.names())


def test_default_mixers_follow_the_sweeps_device_not_the_machine():
    fla_only = {name for name in mixers.REGISTRY if mixers.fla_only(name)}
    assert fla_only, "expected at least one fla-only mixer (rwkv7) to exercise the rule"
    on_cpu = {spec.split(":")[0] for spec in default_mixers("cpu")}
    on_cuda = {spec.split(":")[0] for spec in default_mixers("cuda")}
    assert not on_cpu & fla_only
    assert on_cuda == set(mixers.REGISTRY) and on_cpu == set(mixers.REGISTRY) - fla_only
    assert {case.mixer for case in Sweep(seconds=(10,), device="cpu").cases()} == on_cpu


def test_cases_cross_every_axis_and_resolve_auto_kernel():
    sweep = Sweep(seconds=(10, 25), mixers=("sa", "sa:naive"), dtypes=("fp32", "bf16"), batches=(1, 2))
    cases = sweep.cases()
    assert len(cases) == 2 * 2 * 2 * 2
    assert {c.kernel for c in cases} == {"sdpa", "naive"}  # "sa" alone resolves to its default
    assert len({c.key for c in cases}) == len(cases)


def test_preset_overrides_keep_unset_axes():
    sweep = preset("quick", seconds=(10,), hidden=None)
    assert sweep.seconds == (10,)
    assert sweep.hidden == PRESETS["quick"].hidden


@pytest.mark.parametrize(
    "override, message",
    [
        ({"seconds": (-1,)}, "seconds must be positive"),
        ({"batches": (0,)}, "batch must be >= 1"),
        ({"dtypes": ("fp8",)}, "unknown dtype 'fp8'"),
        ({"min_reps": 0}, "reps must be >= 1"),
        ({"hidden": 100, "heads": 3}, "multiple of heads"),
        ({"mixers": ("nope",)}, "known mixers: sa"),
        ({"mixers": ("sa:flash",)}, "its kernels: sdpa, naive"),
    ],
)
def test_bad_values_fail_before_any_work(override, message):
    with pytest.raises(ValueError, match=message):
        preset("quick", **override).cases()


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="paper, quick"):
        preset("fast")


def test_dtype_aliases():
    assert dtype_name("float32") == "fp32"
    assert dtype_name("BF16") == "bf16"


def test_every_new_axis_changes_the_key_and_the_id():
    from bench.cases import Case

    base = Case("sa", "sdpa", 10.0, "fp32", 1, 64, 2, "cpu")
    variants = [Case("sa", "sdpa", 10.0, "fp32", 1, 64, 2, "cpu", "train"),
                Case("sa", "sdpa", 10.0, "fp32", 1, 64, 2, "cpu", "train", optimizer_step=True),
                Case("sa", "sdpa", 10.0, "fp32", 1, 64, 2, "cpu", "stream"),
                Case("sa", "sdpa", 10.0, "fp32", 1, 64, 2, "cpu", compile=True),
                Case("sa", "sdpa", 10.0, "fp32", 1, 64, 2, "cpu", cuda_graphs=True),
                Case("sa", "sdpa", 10.0, "fp32", 1, 64, 2, "cpu", bidirectional=True),
                Case("sa", "sdpa", 10.0, "fp32", 1, 64, 2, "cpu", bidirectional=True, combine="concat"),
                Case("sa", "sdpa", 10.0, "fp32", 1, 64, 2, "cpu", causal=True)]
    cases = [base, *variants]
    assert len({c.key for c in cases}) == len({c.id for c in cases}) == len(cases)
    assert base.id == "sa:sdpa-10s-fp32-B1-D64-H2-forward-noncausal"
    assert variants[1].id.endswith("train+adamw-noncausal") and variants[-2].id.endswith("bidir:concat")


def test_causality_defaults_and_contradictions():
    from bench.cases import Case

    assert Case("kda", "torch", 10.0, "fp32", 1, 64, 2, "cpu").causal is True
    assert Case("sa", "naive", 10.0, "fp32", 1, 64, 2, "cpu").causal is False  # SER's default
    assert Case("sa", "naive", 10.0, "fp32", 1, 64, 2, "cpu", "stream").causal is True  # a KV cache
    assert Case("kda", "torch", 10.0, "fp32", 1, 64, 2, "cpu", bidirectional=True).causal is False
    with pytest.raises(ValueError, match="applies to softmax attention alone"):
        Case("kda", "torch", 10.0, "fp32", 1, 64, 2, "cpu", causal=False)
    with pytest.raises(ValueError, match="needs mode 'train'"):
        Case("kda", "torch", 10.0, "fp32", 1, 64, 2, "cpu", optimizer_step=True)
    with pytest.raises(ValueError, match="bidirectional"):
        Sweep(seconds=(10,), modes=("stream",), bidirectional=True).cases()


def test_sweep_crosses_modes_and_gives_causal_to_sa_only():
    sweep = Sweep(seconds=(10,), mixers=("sa:naive", "kda"), modes=("forward", "train"), causal=True,
                  optimizer_step=True)
    cases = {(c.mixer, c.mode): c for c in sweep.cases()}
    assert len(cases) == 4
    assert cases["sa", "forward"].causal and cases["kda", "forward"].causal
    assert cases["sa", "train"].optimizer_step and not cases["sa", "forward"].optimizer_step


def test_rows_of_older_files_load_with_the_default_axes(tmp_path):
    import json

    from bench.cases import Case
    from bench.results import ResultsWriter, read_rows

    path = tmp_path / "old.jsonl"
    old = {"kind": "cell", "mixer": "sa", "kernel": "naive", "seconds": 10, "frames": 499, "dtype": "fp32",
           "batch": 1, "hidden": 64, "heads": 2, "device": "cpu", "status": "ok", "median_ms": 1.0}
    path.write_text(json.dumps(old) + "\n" + json.dumps({**old, "mixer": "kda", "kernel": "torch"}) + "\n")
    rows = read_rows(path)
    assert [(r["mode"], r["compile"], r["bidirectional"], r["causal"]) for r in rows] == [
        ("forward", False, False, False), ("forward", False, False, True)]
    done = ResultsWriter(path).done
    assert Case("sa", "naive", 10.0, "fp32", 1, 64, 2, "cpu").key in done
    assert Case("sa", "naive", 10.0, "fp32", 1, 64, 2, "cpu", "train").key not in done


def test_a_cell_asked_for_twice_is_one_cell():
    """A repeated length, or a mixer named with and without its (resolved) kernel, is one cell, in first order."""
    cases = Sweep(seconds=(10, 25, 10), mixers=("sa:sdpa", "kda", "kda:torch", "sa:sdpa"), device="cpu").cases()
    assert [(c.spec, c.seconds) for c in cases] == [
        ("sa:sdpa", 10.0), ("sa:sdpa", 25.0), ("kda:torch", 10.0), ("kda:torch", 25.0)]
