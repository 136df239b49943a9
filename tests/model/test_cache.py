"""The feature cache: equal to encoding on the fly, resumable without duplicates (raise or kill -9),
corruption found, and training from it equal to training on the fly."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from bench.identity import FIELDS, code_identity
from model.cache import JOURNAL, FeatureCache, encoder_options, verify
from model.cache_commands import features_app
from model.data import load_split, open_corpus
from model.dataset import encode, feature_stats, waveform_stats
from model.evaluate import evaluate_run
from model.extract import extract
from model.features import HashedWords, LogMel, speech_encoder, text_encoder
from model.train import run
from model.train_config import resolve_config
from tests.model.tiny_hf import speech_model, text_model

ROOT = Path(__file__).resolve().parents[2]
SPLITS = ("train", "development", "test")


@pytest.fixture(scope="module")
def corpus(tiny_corpus, tmp_path_factory) -> str:
    """16 utterances of the tiny corpus (8 train, 4 development, 4 test) as a csv: manifest."""
    folder = tmp_path_factory.mktemp("sixteen")
    with open(tiny_corpus / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    keep = [r for split, n in zip(SPLITS, (8, 4, 4)) for r in [r for r in rows if r["split"] == split][:n]]
    with open(folder / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "path": str(tiny_corpus / r["path"])} for r in keep)
    shutil.copy(tiny_corpus / "corpus.json", folder / "corpus.json")
    return f"csv:{folder / 'manifest.csv'}"


@pytest.fixture(scope="module")
def hf(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("hf")
    return {"speech": f"hf:{speech_model(root / 'wavlm')}", "text": f"hf:{text_model(root / 'bert')}"}


def _logmel():
    return LogMel(n_mels=20), HashedWords(dim=8)


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "cache"
    extract(corpus, out, *_logmel(), shard_utterances=3, report=lambda _: None)
    return out


def _on_the_fly(corpus: str, speech, text) -> dict:
    source = open_corpus(corpus)
    train = load_split(source, "train")[0]
    stats = waveform_stats(train)
    return {split: encode(load_split(source, split)[0], source.classes, speech, text, *stats) for split in SPLITS}


def _same_split(cached, fly, text: bool = True) -> None:
    assert cached.ids == fly.ids and torch.equal(cached.labels, fly.labels)
    assert cached.frame_counts() == [len(s) for s in fly.speech]
    for i in range(len(fly)):  # exact: the cache stores what encoding on the fly computes, in fp32
        assert torch.equal(cached.speech[i], fly.speech[i]), cached.ids[i]
        assert not text or torch.equal(cached.text[i], fly.text[i]), cached.ids[i]


def test_logmel_cache_equals_on_the_fly(corpus, reference):
    cache, fly = FeatureCache(reference), _on_the_fly(corpus, *_logmel())
    for split in SPLITS:
        _same_split(cache.split(split), fly[split])
    assert (cache.wave_mean, cache.wave_std) == waveform_stats(load_split(open_corpus(corpus), "train")[0])
    (mean, std), text = cache.stats()
    expected = feature_stats(fly["train"].speech)
    assert torch.equal(mean, expected[0]) and torch.equal(std, expected[1])  # the training split's, exactly
    # Shards of at most 3 utterances that never span two splits: 3+3+2, 3+1, 3+1.
    assert [(s["split"], s["utterances"]) for s in cache.index["shards"]] == [
        ("train", 3), ("train", 3), ("train", 2), ("development", 3), ("development", 1), ("test", 3), ("test", 1)]
    assert cache.frames(8_000) == LogMel(n_mels=20).frames(8_000) == 48
    crop = cache.split("train").speech.crop(0, 5, 10)
    assert torch.equal(crop, fly["train"].speech[0][5:15])
    assert verify(reference) == [] and not (reference / JOURNAL).exists()


def test_hf_cache_of_every_layer_serves_any_layer(corpus, hf, tmp_path):
    out = tmp_path / "cache"
    extract(corpus, out, speech_encoder(hf["speech"], layer="all"), text_encoder(hf["text"]), shard_mb=0.05,
            report=lambda _: None)
    cache = FeatureCache(out)
    assert cache.speech_info["layers"] == 3 and cache.frames(88_000) == 274
    text = text_encoder(hf["text"])
    for layer in ("all", "last", "1"):
        fly = _on_the_fly(corpus, speech_encoder(hf["speech"], layer=layer), text)
        for split in ("train", "test"):
            _same_split(cache.split(split, layer), fly[split], text=layer == "all")
        assert torch.equal(cache.stats(layer)[0][0], feature_stats(fly["train"].speech)[0])
    assert cache.speech_name("1").endswith("@1") and cache.speech_layers("all") == 3
    assert cache.speech_layers("last") is None
    assert len(cache.index["shards"]) > 3 and verify(out) == []


def test_float16_cache_holds_rounded_features(corpus, reference, tmp_path):
    out = tmp_path / "half"
    extract(corpus, out, *_logmel(), dtype="float16", report=lambda _: None)
    half, full = FeatureCache(out).split("test"), FeatureCache(reference).split("test")
    for i in range(len(half)):
        assert torch.equal(half.speech[i], full.speech[i].half().float())
    assert verify(out) == []


class Stop(Exception):
    pass


def _stopping_at(k: int):
    def on_utterance(done: int, total: int) -> None:
        if done == k:
            raise Stop
    return on_utterance


def _same_cache(a: Path, b: Path) -> None:
    assert json.loads((a / "index.json").read_text()) == json.loads((b / "index.json").read_text())
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    for path in a.glob("*.safetensors"):
        assert path.read_bytes() == (b / path.name).read_bytes(), path.name


def test_interrupted_extraction_resumes_to_the_same_cache(corpus, reference, tmp_path):
    out, lines = tmp_path / "cache", []
    with pytest.raises(Stop):  # after 7 utterances: shards 0-1 complete, the 7th in an open shard, lost
        extract(corpus, out, *_logmel(), shard_utterances=3, on_utterance=_stopping_at(7), report=lambda _: None)
    assert len((out / JOURNAL).read_text().splitlines()) == 2
    # What a kill can leave too: a torn journal line, and a shard renamed before its line was written.
    with open(out / JOURNAL, "a") as f:
        f.write('{"shard": 2, "file": "shard-00002.safe')
    (out / "shard-00002.safetensors").write_bytes(b"partial")
    extract(corpus, out, *_logmel(), shard_utterances=3, report=lines.append)
    assert "resuming after 2 complete shards (6 utterances)" in " ".join(lines)
    _same_cache(out, reference)
    positions = [e["position"] for e in FeatureCache(out).index["utterances"]]
    assert positions == list(range(16))  # each utterance once


def test_the_index_names_the_code_and_a_resume_by_other_code_keeps_the_first(corpus, reference, tmp_path):
    code = code_identity()
    assert {name: FeatureCache(reference).index[name] for name in FIELDS} == code
    out = tmp_path / "cache"
    with pytest.raises(Stop):
        extract(corpus, out, *_logmel(), shard_utterances=3, on_utterance=_stopping_at(4), report=lambda _: None)
    started = json.loads((out / "index.json").read_text())
    assert {name: started[name] for name in FIELDS} == code
    other = {**code, "git_dirty": True, "source_sha256": "0" * 64}  # as if started before an edit
    (out / "index.json").write_text(json.dumps({**started, **other}))
    index = extract(corpus, out, *_logmel(), shard_utterances=3, report=lambda _: None).index
    assert {name: index[name] for name in FIELDS} == code and index["earlier_code"] == [other]


def test_corrupted_shards_are_found_and_redone(corpus, reference, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(reference, broken)
    shard = broken / "shard-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert verify(broken) == ["shard-00001.safetensors: sha256 differs from the index (corrupted)"]
    result = CliRunner().invoke(features_app, ["verify", str(broken)])
    assert result.exit_code == 1 and "shard-00001.safetensors: sha256 differs" in result.output
    assert CliRunner().invoke(features_app, ["verify", str(reference)]).exit_code == 0
    (broken / "shard-00003.safetensors").write_bytes(b"")
    assert "shard-00003.safetensors: 0 bytes" in verify(broken)[1]
    # On resume, journaled shards are re-hashed: a corrupted one and every one after it are redone.
    out = tmp_path / "resumed"
    with pytest.raises(Stop):
        extract(corpus, out, *_logmel(), shard_utterances=3, on_utterance=_stopping_at(7), report=lambda _: None)
    (out / "shard-00000.safetensors").write_bytes(b"garbage")
    lines = []
    extract(corpus, out, *_logmel(), shard_utterances=3, report=lines.append)
    assert "shard 0 incomplete or corrupted" in " ".join(lines)
    _same_cache(out, reference)


def test_other_settings_are_refused(corpus, reference):
    with pytest.raises(ValueError, match=r"other settings \(speech differ\)"):
        extract(corpus, reference, LogMel(n_mels=24), HashedWords(dim=8), shard_utterances=3, report=lambda _: None)


# `python -m model features extract ...` in a process that SIGKILLs itself while encoding utterance KILL_AT.
KILLER = """
import os, signal, sys
import model.extract as extract
from model.__main__ import app
calls, real = [0], extract.encode_utterance
def counting(*args, **kwargs):
    calls[0] += 1
    if calls[0] == int(os.environ["KILL_AT"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
extract.encode_utterance = counting
app(sys.argv[1:], prog_name="model")
"""


@pytest.mark.slow
def test_kill_9_mid_extraction_then_resume_equals_uninterrupted(corpus, reference, tmp_path):
    out = tmp_path / "killed"
    args = ["features", "extract", f"--corpus={corpus}", f"--out={out}", "--n-mels=20", "--text-encoder=words",
            "--text-dim=8", "--shard-utterances=3", "--device=cpu"]
    done = subprocess.run([sys.executable, "-c", KILLER, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KILL_AT": "11", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert len((out / JOURNAL).read_text().splitlines()) == 3  # 3 train shards; utterance 11 was in shard 4
    extract(corpus, out, *_logmel(), shard_utterances=3, report=lambda _: None)
    _same_cache(out, reference)


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
    extract(f"csv:{own / 'manifest.csv'}", tmp_path / "cache", *_logmel(), report=lambda _: None)
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
