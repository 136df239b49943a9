"""``bench table1``: accuracy rows the test writes, joined to the paper's real Table 1 CSV."""

import csv
import io
import json

import pytest
import typer
from typer.testing import CliRunner

from model.commands import table1
from model.metrics import append_row
from model.table1 import REFERENCE, backbone, render, table

WAVLM, HUBERT = "hf:microsoft/wavlm-large", "hf:/models/hubert-large-ll60k@all"


def _row(path, mixer, encoder, split, f1, run, fusion="concat", corpus="MSP-Podcast", kernel="sdpa"):
    append_row(path, {"kind": "accuracy", "mixer": mixer, "kernel": kernel, "speech_encoder": encoder,
                      "fusion": fusion, "corpus": corpus, "split": split, "macro_f1": f1, "run_dir": run})


@pytest.fixture
def results(tmp_path):
    path = tmp_path / "accuracy.jsonl"
    path.write_text('{"kind": "header", "device": "cpu"}\n')  # an efficiency header: not an accuracy row
    _row(path, "sa", WAVLM, "development", 0.30, "runs/a")
    _row(path, "sa", WAVLM, "development", 0.31, "runs/a")  # the same run re-scored: the last row counts
    _row(path, "sa", WAVLM, "test1", 0.34, "runs/a")
    _row(path, "sa", WAVLM, "test1", 0.36, "runs/b", kernel="naive")  # a second seed, another kernel
    _row(path, "sa", WAVLM, "test", 0.99, "runs/a")  # not a Table 1 split
    _row(path, "kda", HUBERT, "test2", 0.2222, "runs/c", kernel="torch")
    _row(path, "sa", WAVLM, "test2", 0.25, "runs/g", fusion="gat")
    _row(path, "sa", "logmel80", "test1", 0.20, "runs/l")
    for encoder, f1 in (("hf:facebook/wav2vec2-xls-r-300m", 0.30), (WAVLM, 0.32), ("hf:facebook/wav2vec2-large", 0.34),
                        (HUBERT, 0.36)):
        _row(path, "retnet", encoder, "test1", f1, f"runs/r-{f1}", kernel="torch")
    return path


def _find(records, mechanism, backbone_name):
    return next(r for r in records if (r["mechanism"], r["backbone"]) == (mechanism, backbone_name))


def test_backbone_names_are_recognised():
    assert [backbone(n) for n in ("hf:facebook/wav2vec2-xls-r-1b", "hf:facebook/wav2vec2-large-xlsr-53",
                                  "hf:microsoft/WavLM-Large", "hf:facebook/hubert-large-ll60k",
                                  "hf:facebook/wav2vec2-large-960h", "logmel80")] == [
        "Wav2Vec2XLSR", "Wav2Vec2XLSR", "WavLM", "HuBERT", "Wav2Vec2", "logmel80"]


def test_ours_beside_the_papers_table(results):
    records = table([results], REFERENCE)
    sa = _find(records, "SA", "WavLM")
    assert sa["Dev"]["paper"] == 37.50 and sa["Test1"]["paper"] == 36.80 and sa["Test2"]["paper"] == 27.30
    assert sa["Dev"]["ours"] == pytest.approx(31.0) and sa["Dev"]["runs"] == 1
    assert sa["Test1"]["ours"] == pytest.approx(35.0) and sa["Test1"]["runs"] == 2
    assert sa["Test1"]["std"] == pytest.approx(2 ** 0.5)  # sample std of 34 and 36
    assert sa["Test2"]["ours"] is None  # the gat row is its own mechanism
    assert _find(records, "KDA", "HuBERT")["Test2"] == {"ours": pytest.approx(22.22), "std": None, "runs": 1,
                                                         "paper": 22.73}
    assert _find(records, "GAT fusion (sa)", "WavLM")["Test2"] == {"ours": 25.0, "std": None, "runs": 1,
                                                                   "paper": None}
    assert _find(records, "SA", "logmel80")["Test1"]["ours"] == pytest.approx(20.0)
    light = _find(records, "LightNet", "Wav2Vec2XLSR")
    assert light["Dev"] == {"ours": None, "std": None, "runs": 0, "paper": 38.11}
    assert _find(records, "baseline", "WavLM")["Dev"]["paper"] is None  # the paper gives no Dev baseline
    # Means: ours only where all four backbones ran (RetNet Test1), the paper's as stated.
    assert _find(records, "RetNet", "mean")["Test1"] == {"ours": pytest.approx(33.0), "std": None, "runs": 0,
                                                         "paper": 34.30}
    assert _find(records, "SA", "mean")["Test1"]["ours"] is None
    order = [(r["mechanism"], r["backbone"]) for r in records]
    assert order.index(("SA", "Wav2Vec2XLSR")) < order.index(("SA", "HuBERT")) < order.index(("SA", "mean"))
    assert order.index(("SA", "mean")) < order.index(("SA", "logmel80")) < order.index(("RetNet", "Wav2Vec2XLSR"))
    assert order[-1][0] == "GAT fusion (sa)" and len([o for o in order if o[0] == "KDA"]) == 5


def test_markdown_csv_and_json(results):
    records = table([results])
    markdown = render(records, "markdown")
    lines = markdown.splitlines()
    assert lines[0] == ("| mechanism | backbone | Dev (v1) ours | Dev (v1) paper | Test1 ours | Test1 paper "
                        "| Test2 ours | Test2 paper |")
    assert "| SA | WavLM | 31.00 | 37.50 | 35.00 ± 1.41 (n=2) | 36.80 | - | 27.30 |" in lines
    assert "| KDA | HuBERT | - | 34.26 | - | 30.72 | 22.22 | 22.73 |" in lines
    rows = list(csv.DictReader(io.StringIO(render(records, "csv"))))
    kda = next(r for r in rows if (r["mechanism"], r["backbone"]) == ("KDA", "HuBERT"))
    assert float(kda["test2_ours"]) == pytest.approx(22.22)  # full precision in CSV and JSON
    assert (kda["test2_runs"], kda["test2_paper"], kda["dev_ours"]) == ("1", "22.73", "")
    assert json.loads(render(records, "json")) == json.loads(json.dumps(records))
    with pytest.raises(ValueError, match="unknown format 'html'"):
        render(records, "html")


def test_cli_and_its_one_line_errors(results, tmp_path):
    app = typer.Typer()
    app.command("table1")(table1)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    ok = runner.invoke(app, ["table1", str(results), "--format", "csv"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("mechanism,backbone,dev_ours,dev_std,dev_runs,dev_paper,test1_ours")
    _row(results, "sa", WAVLM, "test1", 0.5, "runs/z", corpus="IEMOCAP")
    mixed = runner.invoke(app, ["table1", str(results)])
    assert mixed.exit_code == 2 and "several corpora (IEMOCAP, MSP-Podcast); choose one with --corpus" in \
        " ".join(mixed.output.split())
    chosen = runner.invoke(app, ["table1", str(results), "--corpus", "MSP-Podcast", "--format", "json"])
    assert _find(json.loads(chosen.output), "SA", "WavLM")["Test1"]["runs"] == 2
    empty = tmp_path / "cells.jsonl"
    empty.write_text('{"kind": "cell", "mixer": "sa"}\n')
    assert "no accuracy rows" in runner.invoke(app, ["table1", str(empty)]).output


def test_rows_without_a_run_folder_are_separate_runs(tmp_path):
    path = tmp_path / "a.jsonl"
    for f1 in (0.30, 0.40):
        append_row(path, {"kind": "accuracy", "mixer": "fox", "kernel": "torch", "speech_encoder": WAVLM,
                          "split": "Test1", "macro_f1": f1, "corpus": "MSP-Podcast"})
    assert _find(table([path]), "FoX", "WavLM")["Test1"]["runs"] == 2
