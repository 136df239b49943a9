"""The feature cache: equal to encoding on the fly, resumable without duplicates (raise or kill -9),
corruption found (training from it: ``test_cache_training.py``)."""

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
from model.cache import JOURNAL, FeatureCache, verify
from model.cache_commands import features_app
from model.data import load_split, open_corpus
from model.dataset import feature_stats, waveform_stats
from model.extract import extract
from model.features import HashedWords, LogMel, speech_encoder, text_encoder
from tests.model import cache_fixtures
from tests.model.cache_fixtures import ROOT, SPLITS, logmel, on_the_fly, same_split

corpus, hf, reference = cache_fixtures.corpus, cache_fixtures.hf, cache_fixtures.reference  # the fixtures


def test_logmel_cache_equals_on_the_fly(corpus, reference):
    cache, fly = FeatureCache(reference), on_the_fly(corpus, *logmel())
    for split in SPLITS:
        same_split(cache.split(split), fly[split])
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
        fly = on_the_fly(corpus, speech_encoder(hf["speech"], layer=layer), text)
        for split in ("train", "test"):
            same_split(cache.split(split, layer), fly[split], text=layer == "all")
        assert torch.equal(cache.stats(layer)[0][0], feature_stats(fly["train"].speech)[0])
    assert cache.speech_name("1").endswith("@1") and cache.speech_layers("all") == 3
    assert cache.speech_layers("last") is None
    assert len(cache.index["shards"]) > 3 and verify(out) == []


def test_float16_cache_holds_rounded_features(corpus, reference, tmp_path):
    out = tmp_path / "half"
    extract(corpus, out, *logmel(), dtype="float16", report=lambda _: None)
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
    def index(cache: Path) -> dict:  # the content; which code wrote it is tested apart (a process may differ)
        record = json.loads((cache / "index.json").read_text())
        return {k: v for k, v in record.items() if k not in (*FIELDS, "earlier_code")}

    assert index(a) == index(b)
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    for path in a.glob("*.safetensors"):
        assert path.read_bytes() == (b / path.name).read_bytes(), path.name


def test_interrupted_extraction_resumes_to_the_same_cache(corpus, reference, tmp_path):
    out, lines = tmp_path / "cache", []
    with pytest.raises(Stop):  # after 7 utterances: shards 0-1 complete, the 7th in an open shard, lost
        extract(corpus, out, *logmel(), shard_utterances=3, on_utterance=_stopping_at(7), report=lambda _: None)
    assert len((out / JOURNAL).read_text().splitlines()) == 2
    # What a kill can leave too: a torn journal line, and a shard renamed before its line was written.
    with open(out / JOURNAL, "a") as f:
        f.write('{"shard": 2, "file": "shard-00002.safe')
    (out / "shard-00002.safetensors").write_bytes(b"partial")
    extract(corpus, out, *logmel(), shard_utterances=3, report=lines.append)
    assert "resuming after 2 complete shards (6 utterances)" in " ".join(lines)
    _same_cache(out, reference)
    positions = [e["position"] for e in FeatureCache(out).index["utterances"]]
    assert positions == list(range(16))  # each utterance once


def test_the_index_names_the_code_and_a_resume_by_other_code_keeps_the_first(corpus, reference, tmp_path):
    code = code_identity()
    assert {name: FeatureCache(reference).index[name] for name in FIELDS} == code
    out = tmp_path / "cache"
    with pytest.raises(Stop):
        extract(corpus, out, *logmel(), shard_utterances=3, on_utterance=_stopping_at(4), report=lambda _: None)
    started = json.loads((out / "index.json").read_text())
    assert {name: started[name] for name in FIELDS} == code
    other = {**code, "git_dirty": True, "source_sha256": "0" * 64}  # as if started before an edit
    (out / "index.json").write_text(json.dumps({**started, **other}))
    index = extract(corpus, out, *logmel(), shard_utterances=3, report=lambda _: None).index
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
        extract(corpus, out, *logmel(), shard_utterances=3, on_utterance=_stopping_at(7), report=lambda _: None)
    (out / "shard-00000.safetensors").write_bytes(b"garbage")
    lines = []
    extract(corpus, out, *logmel(), shard_utterances=3, report=lines.append)
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
    extract(corpus, out, *logmel(), shard_utterances=3, report=lambda _: None)
    _same_cache(out, reference)
