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
