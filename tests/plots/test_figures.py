"""Figure 2, the cost-model check and the accuracy-latency scatter, inspected through matplotlib's objects:
which series each panel draws, where unmeasured cells sit, which styles tell files apart."""

import matplotlib.colors as mcolors
import numpy as np
import pytest

from plots.costmodel import cost_model_figure
from plots.figure2 import figure2
from plots.load import load_accuracy, load_cells, load_paper_points
from plots.style import mixer_style, save
from plots.tradeoff import accuracy_latency_figure
from tests.plots.synthetic import HIDDEN, activation_bytes, append_accuracy, write_results

GIB = 2**30


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("figures")
    first = write_results(root / "a.jsonl", not_measured={("sa:naive", 200): "skipped", ("sa:sdpa", 200): "oom"})
    second = write_results(root / "b.jsonl", device_name="Other CPU", slower={"kda:torch": 1.3})
    append_accuracy(first, {"sa:naive": 0.36, "sa:sdpa": 0.36, "kda:torch": 0.33, "fox:torch": 0.35}, seeds=(0, 1))
    return first, second


@pytest.fixture(scope="module")
def fig2(files):
    return figure2(load_cells(*files), paper=load_paper_points())


def _panel(figure, letter):
    return next(ax for ax in figure.axes if ax.get_title(loc="left").startswith(f"({letter})"))


def _series_colours(ax):
    """Colours of the solid and dashed data lines (the dotted links to unmeasured cells excluded)."""
    return {mcolors.to_hex(line.get_color()) for line in ax.get_lines() if line.get_linestyle() in ("-", "--")}


def test_panels_c_and_d_leave_softmax_attention_out(fig2):
    naive, sdpa, kda = (mixer_style(k)[0].lower() for k in ("sa:naive", "sa:sdpa", "kda"))
    for letter in "ab":
        assert {naive, sdpa, kda} <= _series_colours(_panel(fig2, letter))
    for letter in "cd":
        colours = _series_colours(_panel(fig2, letter))
        assert kda in colours and not colours & {naive, sdpa}


def test_each_file_has_its_own_line_style(fig2):
    kda = mixer_style("kda")[0].lower()
    styles = {line.get_linestyle() for line in _panel(fig2, "a").get_lines() if mcolors.to_hex(line.get_color()) == kda}
    assert {"-", "--"} <= styles


def test_unmeasured_cells_are_drawn_where_they_would_have_been(fig2):
    memory = _panel(fig2, "b")
    hollow = [c for c in memory.collections if len(c.get_facecolors()) == 0 and c.get_offsets().shape == (1, 2)]
    positions = {tuple(np.round(c.get_offsets()[0], 3)) for c in hollow}
    # The skipped SA cell carries its prediction: activation + weights + input, in GiB (the paper's
    # 12.35 GB overlay puts the axis in GiB).
    assert memory.get_ylabel() == "peak memory (GiB)"
    frames = 9999
    predicted = (activation_bytes("sa:naive", frames) + 4 * HIDDEN * HIDDEN * 4 + frames * HIDDEN * 4) / GIB
    assert (200.0, round(predicted, 3)) in positions
    texts = [t.get_text() for t in memory.texts]
    assert "skipped" in texts and "oom" in texts
    # The oom cell has no prediction: its latency is extrapolated along SDPA's own (quadratic) law.
    latency = _panel(fig2, "a")
    oom = next(t for t in latency.texts if t.get_text() == "oom")
    assert 3.5 * 30 < oom.xy[1] < 4.5 * 30  # 4x the 100 s median (30 ms), within the fit's curvature


def test_legend_carries_exponents_styles_and_the_papers_device(fig2):
    labels = [t.get_text() for t in fig2.legends[0].get_texts()]
    assert any(label.startswith("sa:naive  alpha 1.99/2.00, beta 2.00/2.00") for label in labels)
    assert any("a.jsonl (Test CPU (2 cores))" in label for label in labels)
    assert any("b.jsonl (Other CPU)" in label for label in labels)
    assert any("paper's stated points (NVIDIA H100)" in label for label in labels)
    annotations = [t.get_text() for t in _panel(fig2, "a").texts]
    assert "SA 48.59 ms (NVIDIA H100)" in annotations and "KDA 5.96 ms (NVIDIA H100)" in annotations
    assert not any(text.startswith("SA ") for text in (t.get_text() for t in _panel(fig2, "c").texts))


def test_frames_on_the_secondary_axis(fig2):
    secondary = _panel(fig2, "a").child_axes[0]
    assert secondary.get_xlabel().startswith("frames")


def test_one_configuration_per_figure(files, tmp_path):
    other = write_results(tmp_path / "wide.jsonl", labels=("kda:torch",))
    cells = load_cells(files[0], other)
    cells.loc[cells["source"] == str(other), "hidden"] = 1024
    with pytest.raises(ValueError, match="one configuration at a time, got 2"):
        figure2(cells)


def test_colours_are_kept_across_figures(files):
    cells, accuracy = load_cells(files[0]), load_accuracy(files[0])
    kda = mixer_style("kda")[0].lower()
    cost = cost_model_figure(cells)
    assert kda in {mcolors.to_hex(c.get_facecolors()[0]) for c in cost.axes[0].collections if len(c.get_offsets())}
    tradeoff = accuracy_latency_figure(cells, accuracy)
    ax = tradeoff.axes[0]
    assert kda in {mcolors.to_hex(line.get_color()) for line in ax.get_lines()}
    assert ax.get_xlabel() == "median latency at 100 s of audio (ms)"


def test_save_writes_png_svg_and_pdf_on_request(files, tmp_path):
    cells, accuracy = load_cells(files[0]), load_accuracy(files[0])
    written = save(accuracy_latency_figure(cells, accuracy), tmp_path / "f", pdf=True)
    magic = {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF"}
    assert [p.suffix for p in written] == [".png", ".svg", ".pdf"]
    for path in written:
        assert path.read_bytes().startswith(magic[path.suffix])
    assert [p.suffix for p in save(cost_model_figure(cells), tmp_path / "g")] == [".png", ".svg"]


def test_cells_with_nothing_to_place_them_by_sit_on_the_top_edge(tmp_path):
    path = write_results(tmp_path / "r.jsonl", labels=("sa:naive", "kda:torch"), seconds=(10, 20),
                         not_measured={("kda:torch", 10): "oom", ("kda:torch", 20): "oom"})
    cells = load_cells(path)
    cells.loc[(cells["label"] == "sa:naive") & (cells["seconds"] == 10), "status"] = "error"
    figure = figure2(cells)
    for letter in "abcd":
        ax = _panel(figure, letter)
        low, high = ax.get_xlim()
        # Every panel spans both lengths, though panel (c) has no measured point at all.
        assert low < 10 and high > 20 and high - low < 12
        assert [t.get_text() for t in ax.texts] == ["oom (no estimate)"] * 2
    labels = [t.get_text() for t in figure.legends[0].get_texts()]
    assert "not drawn: 1 cells failed with an error (sa:naive)" in labels
