"""Fixtures of the feature-cache tests: a 16-utterance corpus, tiny Hugging Face encoders, a reference cache."""

import csv
import shutil
from pathlib import Path

import pytest
import torch

from model.data import load_split, open_corpus
from model.dataset import encode, waveform_stats
from model.extract import extract
from model.features import HashedWords, LogMel
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


def logmel():
    return LogMel(n_mels=20), HashedWords(dim=8)


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "cache"
    extract(corpus, out, *logmel(), shard_utterances=3, report=lambda _: None)
    return out


def on_the_fly(corpus: str, speech, text) -> dict:
    source = open_corpus(corpus)
    train = load_split(source, "train")[0]
    stats = waveform_stats(train)
    return {split: encode(load_split(source, split)[0], source.classes, speech, text, *stats) for split in SPLITS}


def same_split(cached, fly, text: bool = True) -> None:
    assert cached.ids == fly.ids and torch.equal(cached.labels, fly.labels)
    assert cached.frame_counts() == [len(s) for s in fly.speech]
    for i in range(len(fly)):  # exact: the cache stores what encoding on the fly computes, in fp32
        assert torch.equal(cached.speech[i], fly.speech[i]), cached.ids[i]
        assert not text or torch.equal(cached.text[i], fly.text[i]), cached.ids[i]


