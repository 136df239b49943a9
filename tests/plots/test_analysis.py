"""Scaling fits, crossovers, the cost-model check and the Pareto front, against closed-form answers.

The synthetic results follow known laws (tests/plots/synthetic.py), so every expected value here is
computed by hand from those laws, never by the code under test.
"""

import json
import math

import numpy as np
import pytest

from bench.cases import frames
from plots.analysis import (
    accuracy_vs_latency,
    crossover,
    crossovers,
    frames_at,
    pareto_front,
    power_fit,
    scaling,
    seconds_at,
)
from plots.load import load_accuracy, load_cells
from plots.summary import cells_display, markdown
from tests.plots.synthetic import LAWS, append_accuracy, write_results


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    path = write_results(tmp_path_factory.mktemp("r") / "r.jsonl", seconds=(10, 25, 50, 100, 200),
                         not_measured={("sa:naive", 200): "skipped", ("sa:sdpa", 200): "oom"}, predicted_error=-0.2)
    return load_cells(path)


def test_power_fit_recovers_exponent_and_prefactor_exactly():
    x = np.array([100, 300, 1000, 7000])
    exponent, prefactor = power_fit(x, 3.5 * x**1.7)
    assert exponent == pytest.approx(1.7, abs=1e-12) and prefactor == pytest.approx(3.5, rel=1e-10)


def test_power_fit_needs_two_distinct_lengths():
    with pytest.raises(ValueError, match="two distinct lengths"):
        power_fit([100, 100], [1.0, 2.0])


def test_frames_axis_matches_the_harness_at_every_whole_frame():
    for s in (1.0, 10, 25.01, 400):
        # The smooth axis floors to the harness's frame count.
        assert math.floor(frames_at(s)) == frames(s)
    assert seconds_at(frames_at(37.5)) == pytest.approx(37.5, abs=1e-12)


def test_scaling_fits_the_longest_lengths_and_skips_unmeasured_cells(cells):
    fits = scaling(cells).set_index("label")
    # Memory laws are pure powers: exact. Latency has a constant term, so the fitted slope sits just
    # below the law's exponent; the longest three lengths keep it within 0.05 (hand-computed bound).
    assert fits.loc["sa:naive", "beta"] == pytest.approx(2.0, abs=1e-3)
    assert fits.loc["kda:torch", "beta"] == pytest.approx(1.0, abs=1e-3)
    assert fits.loc["sa:naive", "alpha"] == pytest.approx(2.0, abs=0.05)
    assert fits.loc["kda:torch", "alpha"] == pytest.approx(1.0, abs=0.05)
    # SA's 200 s cells were skipped / oom: its fit stops at 100 s.
    assert (fits.loc["sa:naive", "from_s"], fits.loc["sa:naive", "to_s"]) == (25, 100)
    assert (fits.loc["kda:torch", "from_s"], fits.loc["kda:torch", "to_s"]) == (50, 200)


def test_scaling_needs_three_lengths(tmp_path):
    few = load_cells(write_results(tmp_path / "r.jsonl", seconds=(10, 20)))
    assert scaling(few).empty


def test_crossover_interpolates_between_bracketing_lengths():
    # kda = 0.3 + 2e-3 f, sdpa = 0.05 + 1.2e-6 f^2: equal at f = 1783.5 frames, 35.68 s.
    a, b, _, _, _ = LAWS["kda:torch"]
    a2, b2, _, _, _ = LAWS["sa:sdpa"]
    exact_frames = (b + math.sqrt(b * b + 4 * b2 * (a - a2))) / (2 * b2)
    seconds = [10, 25, 50, 100]
    f = [frames(s) for s in seconds]
    at, note = crossover(seconds, [a + b * x for x in f], [a2 + b2 * x * x for x in f])
    # Interpolating log-time linearly in log-seconds between 25 s and 50 s: within 1% here.
    assert note == "crosses" and at == pytest.approx(seconds_at(exact_frames), rel=0.01)


@pytest.mark.parametrize("efficient, note", [([1, 1, 1], "faster throughout"), ([3, 3, 3], "never in range"),
                                             ([3, 1, 3], "never in range")], ids=["always", "never", "flips-back"])
def test_crossover_outside_the_range(efficient, note):
    at, found = crossover([10, 20, 40], efficient, [2, 2, 2])
    assert (at, found) == (None, note)


def test_crossovers_pair_each_efficient_mixer_with_each_sa_kernel(cells):
    table = crossovers(cells)
    assert set(zip(table["label"], table["versus"])) == {
        (m, sa) for m in ("kda:torch", "fox:torch") for sa in ("sa:sdpa", "sa:naive")}
    row = table[(table["label"] == "kda:torch") & (table["versus"] == "sa:naive")].iloc[0]
    # kda = 0.3 + 2e-3 f against naive = 0.05 + 2e-6 f^2: equal at f = 1112.4, 22.25 s.
    assert row["note"] == "crosses" and row["crossover_s"] == pytest.approx(22.25, rel=0.01)


def test_cost_check_ratio_and_achieved_flops(cells):
    table = cells_display(cells[(cells["label"] == "kda:torch") & (cells["seconds"] == 100)])
    # Predictions were written 20% low, so measured / predicted = 1 / 0.8.
    assert table["measured/predicted"].iloc[0] == "1.25"
    # 1e6 FLOP per frame, 4999 frames, in (0.3 + 2e-3 * 4999) ms = 10.298 ms -> 485 GFLOP/s.
    assert table["GFLOP/s"].iloc[0] == "485"
    unmeasured = cells_display(cells[cells["status"] == "skipped"])
    assert unmeasured["median ms"].iloc[0] == "" and unmeasured["measured/predicted"].iloc[0] == ""


@pytest.mark.parametrize("latency, score, front", [
    ([1, 2, 3], [0.1, 0.2, 0.3], [True, True, True]),
    ([1, 2, 3], [0.3, 0.2, 0.1], [True, False, False]),
    ([1, 1, 2], [0.2, 0.3, 0.3], [False, True, False]),  # a tie in latency: only the better score
    ([2, 1, 3], [0.3, 0.1, 0.35], [True, True, True]),
], ids=["all", "one", "ties", "unsorted"])
def test_pareto_front(latency, score, front):
    assert pareto_front(latency, score).tolist() == front


def test_accuracy_joins_on_mixer_and_kernel_at_the_longest_common_length(tmp_path):
    path = write_results(tmp_path / "r.jsonl", seconds=(10, 50, 100), not_measured={("sa:naive", 100): "oom"})
    append_accuracy(path, {"sa:naive": 0.40, "kda:torch": 0.30, "fox:fla": 0.99}, seeds=(0, 1))
    append_accuracy(path, {"sa:naive": 0.10}, split="dev")
    points, seconds, split = accuracy_vs_latency(load_cells(path), load_accuracy(path))
    # fox ran as fla in training but as torch here: no join. SA's 100 s cell is oom: 50 s is common.
    assert (seconds, split) == (50.0, "test")
    assert sorted(points["label"]) == ["kda:torch", "sa:naive"]
    assert points.set_index("label").loc["sa:naive", "macro_f1"] == pytest.approx(0.4005)  # mean of two seeds
    assert points["pareto"].all()  # kda faster, SA more accurate
    with pytest.raises(ValueError, match="splits present: test, dev"):
        accuracy_vs_latency(load_cells(path), load_accuracy(path), split="val")


def test_markdown_escapes_pipes():
    import pandas as pd

    assert markdown(pd.DataFrame({"a": ["x|y"], "b": [None]})).splitlines()[2] == "| x\\|y |  |"


def _accuracy_row(path, label, f1, encoder, corpus="msp-podcast", seed=0, **extra):
    mixer, kernel = label.split(":")
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"kind": "accuracy", "mixer": mixer, "kernel": kernel, "split": "test", "macro_f1": f1,
                            "corpus": corpus, "speech_encoder": encoder, "seed": seed, **extra}) + "\n")


def test_accuracy_is_averaged_within_one_corpus_and_encoder_only(tmp_path, monkeypatch):
    from plots.figures import all_figures

    monkeypatch.setitem(LAWS, "reslstm:torch", (0.2, 1e-3, 1.0, 1000.0, 1.0))
    path = write_results(tmp_path / "r.jsonl", labels=("sa:naive", "kda:torch", "reslstm:torch"), seconds=(10, 50))
    for seed, f1 in enumerate((0.40, 0.42)):
        _accuracy_row(path, "sa:naive", f1, "logmel80", seed=seed)
        _accuracy_row(path, "kda:torch", f1 - 0.1, "logmel80", seed=seed)
    _accuracy_row(path, "sa:naive", 0.90, "hf:microsoft/wavlm-large")
    _accuracy_row(path, "reslstm:torch", 0.62, "mfcc34+chroma12", corpus="ravdess", system="reslstm-sa")
    cells, accuracy = load_cells(path), load_accuracy(path)
    points, _, _ = accuracy_vs_latency(cells, accuracy)  # the largest group: logmel80's 4 rows
    by = points.set_index("label")
    assert sorted(by.index) == ["kda:torch", "sa:naive"]  # the ResLSTM-SA system never joins the reslstm mixer
    assert by.loc["sa:naive", "macro_f1"] == pytest.approx(0.41) and by.loc["sa:naive", "runs"] == 2
    assert set(points["speech_encoder"]) == {"logmel80"}
    assert points.attrs["groups"] == [("ser", "msp-podcast", "logmel80"),
                                      ("ser", "msp-podcast", "hf:microsoft/wavlm-large")]
    other, _, _ = accuracy_vs_latency(cells, accuracy, encoder="hf:microsoft/wavlm-large")
    assert other.set_index("label")["macro_f1"].to_dict() == {"sa:naive": 0.90}
    with pytest.raises(ValueError, match="no accuracy rows for corpus ravdess, encoder any; present: corpus "
                                         "msp-podcast, encoder logmel80; corpus msp-podcast, encoder hf:"):
        accuracy_vs_latency(cells, accuracy, corpus="ravdess")
    figure = dict(all_figures([path], encoder="hf:microsoft/wavlm-large"))["accuracy_latency"]
    assert figure.axes[0].get_title(loc="left").splitlines()[1] == (
        "msp-podcast, hf:microsoft/wavlm-large (1 other corpus/encoder group: --corpus, --encoder)")
