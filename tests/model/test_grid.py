"""``bench train`` over mixers x speech encoders: layout, resumption, extra splits; and its accuracy rows in
the same results file as efficiency cells, joined by ``bench plot``'s accuracy-latency analysis."""

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from model.commands import table1, train
from model.grid import cells, slug, split_list
from model.metrics import read_rows
from plots.analysis import accuracy_vs_latency
from plots.figures import all_figures
from plots.load import load_accuracy, load_cells
from tests.plots.synthetic import write_results

app = typer.Typer()
app.command("train")(train)
app.command("table1")(table1)
runner = CliRunner()
TINY = ["--preset", "smoke", "--width", "16", "--heads", "2", "--depth", "1", "--crop-seconds", "0.5",
        "--eval-batch-size", "8", "--device", "cpu", "--epochs", "1"]


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_names_folders_and_lists(tmp_path):
    assert slug("hf:microsoft/wavlm-large") == "hf-microsoft-wavlm-large" and slug("sa:naive") == "sa-naive"
    (tmp_path / "my-wavlm").mkdir()
    assert slug(f"hf:{tmp_path / 'my-wavlm'}") == "hf-my-wavlm"  # a local folder: its own name
    assert slug("logmel+f0") == "logmel+f0"
    assert split_list(" sa, kda ") == ["sa", "kda"] and split_list(None) == []
    for bad in ("sa,,kda", "sa,sa"):
        with pytest.raises(ValueError, match="distinct names"):
            split_list(bad)
    assert [c.out for c in cells(["sa"], [None], tmp_path)] == [tmp_path]  # one run: --out itself
    grid = cells(["sa", "kda"], ["logmel", "hf:a/b"], tmp_path)
    assert [c.out.relative_to(tmp_path).as_posix() for c in grid] == ["logmel/sa", "logmel/kda", "hf-a-b/sa",
                                                                      "hf-a-b/kda"]
    with pytest.raises(ValueError, match="share a folder name"):
        cells(["sa:naive", "sa-naive"], ["logmel"], tmp_path)


@pytest.fixture(scope="module")
def grid(tiny_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    results = write_results(root / "results.jsonl", labels=("sa:sdpa", "kda:torch", "fox:torch"))
    args = ["train", "--corpus", tiny_corpus, "--out", root / "runs", "--results", results, "--mixer", "sa,kda",
            "--speech-encoder", "logmel,logmel+f0", "--test-split", "test,train", *TINY]
    first = _invoke(*args)
    assert first.exit_code == 0, first.output
    return root, args, first.output


def test_grid_trains_each_combination_into_its_folder(grid):
    root, _, output = grid
    runs = sorted(p.parent.relative_to(root / "runs").as_posix() for p in (root / "runs").glob("*/*/config.json"))
    assert runs == ["logmel+f0/kda", "logmel+f0/sa", "logmel/kda", "logmel/sa"]
    config = json.loads((root / "runs/logmel+f0/kda/config.json").read_text())
    assert config["speech_encoder"] == "logmel40+f0" and config["model"]["f0"] and config["model"]["mixer"] == "kda"
    rows = read_rows(root / "results.jsonl", "accuracy")
    # Per run: development and test from training, then the extra split (train) scored once.
    assert sorted((r["run_dir"][len(str(root / "runs")) + 1:], r["split"]) for r in rows) == sorted(
        (run, split) for run in runs for split in ("development", "test", "train"))
    assert {(r["mixer"], r["kernel"], r["speech_encoder"], r["fusion"]) for r in rows} == {
        (m, k, e, "concat") for m, k in (("sa", "sdpa"), ("kda", "torch")) for e in ("logmel40", "logmel40+f0")}
    assert "run 4/4: logmel+f0 x kda" in " ".join(output.split())


def test_rerun_skips_finished_runs_and_writes_no_row_twice(grid):
    root, args, _ = grid
    before = (root / "results.jsonl").read_text()
    again = _invoke(*args)
    assert again.exit_code == 0, again.output
    assert " ".join(again.output.split()).count("finished: skipped") == 4
    assert (root / "results.jsonl").read_text() == before
    other = _invoke(*args, "--epochs", "2")  # the last --epochs wins: not the runs on disk
    assert other.exit_code == 2 and "holds a run with other settings (epochs)" in " ".join(other.output.split())


def test_plot_joins_grid_rows_to_cells_of_the_same_file(grid):
    root, _, _ = grid
    path = root / "results.jsonl"
    points, seconds, split = accuracy_vs_latency(load_cells(path), load_accuracy(path))
    assert split == "test" and seconds == 200
    # One run per point: the two encoders' runs are never averaged; the first of the tied groups is drawn.
    assert sorted(points["label"]) == ["kda:torch", "sa:sdpa"] and set(points["runs"]) == {1}
    assert [g[2] for g in points.attrs["groups"]] == ["logmel40", "logmel40+f0"]
    test_rows = [r for r in read_rows(path, "accuracy") if r["split"] == "test"]
    for encoder in ("logmel40", "logmel40+f0"):
        chosen, _, _ = accuracy_vs_latency(load_cells(path), load_accuracy(path), encoder=encoder)
        sa = next(r["macro_f1"] for r in test_rows if r["mixer"] == "sa" and r["speech_encoder"] == encoder)
        assert chosen.set_index("label").loc["sa:sdpa", "macro_f1"] == sa
    assert "accuracy_latency" in [name for name, _ in all_figures([path])]


def test_gat_rows_do_not_join_a_mixers_latency(tmp_path):
    path = write_results(tmp_path / "r.jsonl", labels=("sa:sdpa",))
    with open(path, "a") as f:
        for fusion, f1 in (("concat", 0.3), ("gat", 0.9)):
            f.write(json.dumps({"kind": "accuracy", "mixer": "sa", "kernel": "sdpa", "split": "test",
                                "macro_f1": f1, "fusion": fusion}) + "\n")
    points, _, _ = accuracy_vs_latency(load_cells(path), load_accuracy(path))
    assert points["macro_f1"].tolist() == [0.3]


def test_resume_refuses_a_grid(tmp_path):
    result = _invoke("train", "--out", tmp_path, "--resume", "--mixer", "sa,kda")
    assert result.exit_code == 2 and "rerun a grid's command" in result.output


def test_a_wrong_mixer_fails_before_anything_trains(tiny_corpus, tmp_path):
    result = _invoke("train", "--corpus", tiny_corpus, "--out", tmp_path / "g", "--mixer", "sa,nope", *TINY)
    assert result.exit_code == 2 and "unknown mixer 'nope'" in result.output
    assert not Path(tmp_path / "g").exists()
