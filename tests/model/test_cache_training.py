"""Training from the feature cache: equal to training on the fly (log-mel, Hugging Face encoders, F0), and a
run trained from a cache evaluates without its audio."""

import csv
import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from model.cache import FeatureCache, encoder_options
from model.cache_commands import features_app
from model.evaluate import evaluate_run
from model.extract import extract
from model.features import speech_encoder
from model.train import run
from model.train_config import resolve_config
from tests.model import cache_fixtures
from tests.model.cache_fixtures import logmel

corpus, hf, reference = cache_fixtures.corpus, cache_fixtures.hf, cache_fixtures.reference  # the fixtures


TINY = dict(preset="smoke", width=16, heads=2, depth=1, crop_seconds=0.5, eval_batch_size=4, device="cpu",
            epochs=2, batch_size=4, dropout=0.1)


def test_training_from_the_cache_equals_training_on_the_fly(corpus, reference, tmp_path):
    fly, cached = tmp_path / "fly", tmp_path / "cached"
    run(resolve_config(corpus, "sa", n_mels=20, text_encoder="words", text_dim=8, **TINY), fly, report=lambda _: None)
    run(resolve_config(None, "sa", features=str(reference), **TINY), cached, report=lambda _: None)
    rows = [[json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (fly, cached)]
    assert rows[0] == rows[1]  # every epoch's loss and every score, exactly
    assert rows[0][0]["loss"] > 0
    configs = [json.loads((d / "config.json").read_text()) for d in (fly, cached)]
    assert configs[1]["train"]["features"] == str(reference) and configs[1]["train"]["corpus"] == corpus
    for key in ("wave_mean", "wave_std", "speech_encoder", "text_encoder", "params", "classes"):
        assert configs[0][key] == configs[1][key], key
    # bench evaluate reads the run's cache again: the final test scores come back.
    final = next(r for r in rows[1] if r["kind"] == "final" and r["split"] == "test")
    again = evaluate_run(cached, "test")
    assert (again.macro_f1, again.confusion) == (final["macro_f1"], final["confusion"])


def test_cli_trains_on_hf_encoders_and_on_a_cache(corpus, hf, tmp_path):
    from model.commands import train

    app = CliRunner()
    out = tmp_path / "cache"
    result = app.invoke(features_app, ["extract", "--corpus", corpus, "--out", str(out), "--encoder", hf["speech"],
                                       "--layer", "all", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "16 utterances" in result.output
    import typer

    cli = typer.Typer()
    cli.command("train")(train)
    cli.command("other")(lambda: None)
    flags = ["--preset", "smoke", "--width", "16", "--heads", "2", "--depth", "1", "--crop-seconds", "0.5",
             "--epochs", "1", "--device", "cpu", "--results", str(tmp_path / "r.jsonl")]
    for name, source in (("fly", ["--corpus", corpus, "--speech-encoder", hf["speech"]]), ("cached", ["--features",
                                                                                                       str(out)])):
        result = app.invoke(cli, ["train", "--out", str(tmp_path / name), "--layer", "all", *source, *flags])
        assert result.exit_code == 0, result.output
    configs = [json.loads((tmp_path / n / "config.json").read_text()) for n in ("fly", "cached")]
    assert configs[0]["model"]["speech_layers"] == configs[1]["model"]["speech_layers"] == 3
    assert configs[0]["speech_encoder"] == configs[1]["speech_encoder"] == f"{hf['speech']}@all"
    errors = [(["train", "--out", str(tmp_path / "x"), "--features", str(out), "--corpus", corpus],
               "--features CACHE fixes the corpus"),
              (["train", "--out", str(tmp_path / "y"), "--features", str(out), "--layer", "9"],
               "stores hidden states 0..2; got layer 9")]
    for args, message in errors:
        result = app.invoke(cli, args)
        assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    for args, message in [(["verify", str(tmp_path)], "is not a feature cache"),
                          (["extract", "--corpus", corpus, "--out", str(tmp_path / "z"), "--dtype", "int8"],
                           "expected dtype one of float32, float16, bfloat16")]:
        result = app.invoke(features_app, args)
        assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output


def test_f0_encoders_cache_and_train_as_on_the_fly(corpus, hf, tmp_path):
    """``NAME+f0`` through ``bench features extract``: the cache gives back the encoder's own name and options,
    so training from it equals training on the fly, and a layer index stays before ``+f0``."""
    out = tmp_path / "f0"
    done = CliRunner().invoke(features_app, ["extract", "--corpus", corpus, "--out", str(out), "--encoder",
                                             "logmel+f0", "--n-mels", "20", "--device", "cpu"])
    assert done.exit_code == 0, done.output
    assert {k: v for k, v in encoder_options(out).items() if k in ("speech_encoder", "n_mels")} == {
        "speech_encoder": "logmel+f0", "n_mels": 20}
    fly, cached = tmp_path / "fly", tmp_path / "cached"
    run(resolve_config(corpus, "sa", speech_encoder="logmel+f0", n_mels=20, **TINY), fly, report=lambda _: None)
    run(resolve_config(None, "sa", features=str(out), speech_encoder="logmel+f0", **TINY), cached,
        report=lambda _: None)
    rows = [[json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (fly, cached)]
    assert rows[0] == rows[1] and rows[0][0]["loss"] > 0
    configs = [json.loads((d / "config.json").read_text()) for d in (fly, cached)]
    assert configs[0]["speech_encoder"] == configs[1]["speech_encoder"] == "logmel20+f0"
    assert configs[0]["model"] == configs[1]["model"] and configs[1]["model"]["f0"]
    assert configs[1]["train"]["speech_encoder"] == "logmel+f0" and configs[1]["train"]["n_mels"] == 20
    layered = tmp_path / "hf-f0"
    encoder = speech_encoder(hf["speech"] + "+f0", layer=1)
    extract(corpus, layered, encoder, shard_utterances=8, report=lambda _: None)
    assert FeatureCache(layered).speech_name(None) == encoder.name == f"{hf['speech']}@1+f0"
    assert encoder_options(layered)["speech_encoder"] == f"{hf['speech']}+f0"


def test_evaluating_a_cache_trained_run_needs_no_audio(corpus, tmp_path):
    from model.commands import evaluate

    own = tmp_path / "corpus"
    with open(corpus.removeprefix("csv:"), newline="") as f:
        rows = list(csv.DictReader(f))
    (own / "wav").mkdir(parents=True)
    for r in rows:
        shutil.copy(r["path"], own / "wav" / Path(r["path"]).name)
    with open(own / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "path": f"wav/{Path(r['path']).name}"} for r in rows)
    extract(f"csv:{own / 'manifest.csv'}", tmp_path / "cache", *logmel(), report=lambda _: None)
    final = run(resolve_config(None, "sa", features=str(tmp_path / "cache"), **{**TINY, "epochs": 1}),
                tmp_path / "run", report=lambda _: None)
    shutil.rmtree(own)  # no audio, no manifest: only the cache is left
    import typer

    cli = typer.Typer()
    cli.command("evaluate")(evaluate)
    cli.command("other")(lambda: None)
    done = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "run"), "--split", "test", "--results",
                                    str(tmp_path / "r.jsonl")])
    assert done.exit_code == 0, done.output
    row = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[-1])
    assert (row["macro_f1"], row["confusion"]) == (final["test"]["macro_f1"], final["test"]["confusion"])
    assert row["corpus"] == FeatureCache(tmp_path / "cache").corpus_name
