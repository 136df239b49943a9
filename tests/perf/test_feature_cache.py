"""Training epoch time with a feature cache against encoding on the fly, with one frozen encoder.

What is timed, on one intra-op thread, in one process (so the ratios share the machine's load):

- ``encode_s``: encoding every split with the encoder, what ``bench train --corpus ... --speech-encoder
  hf:...`` does before its first epoch, on every run.
- ``extract_s``: ``bench features extract`` of the same corpus, once for every later run.
- ``open_s``: opening the cache for training (index, statistics; features are read lazily).
- ``epoch_memory_s`` / ``epoch_cache_s``: one training epoch of the SER model (smoke preset) on
  features held in memory, and on features read from the cache's shards (crops read alone).
- ``encode_crops_s``: the encoder run on one epoch's 5.5 s waveform crops, the per-epoch cost of a
  training loop that keeps the frozen encoder in its forward pass instead of encoding once.

Run the measurement the report quotes (a WavLM-like encoder at hidden 256, 4 layers, on 200
synthetic utterances of 2.5-6 s; a few minutes of one core):

    MIXBENCH_PERF_PROFILE=full python -m pytest tests/perf/test_feature_cache.py -s

The CI size (48 utterances under a second, hidden 64, 2 layers) checks the same claims in seconds.
The last line printed is one JSON object with every number.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.perf

PROFILES = {
    "ci": dict(utterances=48, durations=(0.6, 1.0), hidden=64, layers=2, crop_seconds=0.5),
    "full": dict(utterances=200, durations=(2.5, 6.0), hidden=256, layers=4, crop_seconds=5.5),
}


def _epoch(inputs, config) -> float:
    from model import distributed
    from model.build import build_model
    from model.inputs import apply_normalization
    from model.ser import SERConfig
    from model.train import _train_epoch

    torch.manual_seed(0)
    model = build_model(SERConfig(mixer="sa", speech_dim=inputs.speech_dim, width=config.width, heads=config.heads,
                                  dropout=config.dropout, depth=config.depth, budget=config.budget))
    apply_normalization(model, inputs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    start = time.perf_counter()
    _train_epoch(model, inputs.splits[config.train_split], optimizer, config, distributed.Context(), 0,
                 inputs.crop_frames, None, None)
    return time.perf_counter() - start


def _encode_crops(speech, corpus, config) -> float:
    """The encoder on one epoch's waveform crops, batched as training batches them."""
    from model.data import load_split
    from model.dataset import waveform_stats

    loaded = load_split(corpus, config.train_split)[0]
    mean, std = waveform_stats(loaded)
    crop = int(config.crop_seconds * 16_000)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for k in range(0, len(loaded), config.batch_size):
        waves = []
        for _, samples in loaded[k: k + config.batch_size]:
            offset = int(rng.integers(0, max(len(samples) - crop, 0) + 1))
            waves.append(torch.from_numpy((samples[offset: offset + crop] - mean) / std).float())
        lengths = torch.tensor([len(w) for w in waves])
        speech.encode(torch.nn.utils.rnn.pad_sequence(waves, batch_first=True), lengths)
    return time.perf_counter() - start


def test_cached_epochs_beat_encoding_on_the_fly(tmp_path):
    from model.data import open_corpus
    from model.extract import extract
    from model.features import speech_encoder
    from model.inputs import prepare
    from model.synthetic import synthesize
    from model.train_config import resolve_config
    from tests.model.tiny_hf import speech_model

    name = os.environ.get("MIXBENCH_PERF_PROFILE", "ci")
    profile = PROFILES.get(name, PROFILES["ci"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        synthesize(tmp_path / "corpus", profile["utterances"], seed=0, durations=profile["durations"])
        encoder = f"hf:{speech_model(tmp_path / 'wavlm', hidden=profile['hidden'], layers=profile['layers'])}"
        corpus = f"synthetic:{tmp_path / 'corpus'}"
        common = dict(preset="smoke", epochs=1, crop_seconds=profile["crop_seconds"], threads=1, device="cpu")
        fly_config = resolve_config(corpus, "sa", speech_encoder=encoder, **common)
        t = time.perf_counter()
        fly = prepare(fly_config)
        encode_s = time.perf_counter() - t
        speech = speech_encoder(encoder)
        t = time.perf_counter()
        extract(corpus, tmp_path / "cache", speech, report=lambda _: None)
        extract_s = time.perf_counter() - t
        cache_config = resolve_config(None, "sa", features=str(tmp_path / "cache"), **common)
        t = time.perf_counter()
        cached = prepare(cache_config)
        open_s = time.perf_counter() - t
        epoch_memory_s, epoch_cache_s = _epoch(fly, fly_config), _epoch(cached, cache_config)
        encode_crops_s = _encode_crops(speech, open_corpus(corpus), fly_config)
    finally:
        torch.set_num_threads(threads)
    stored = sum(p.stat().st_size for p in (tmp_path / "cache").glob("shard-*"))
    row = {"profile": name, **{k: v for k, v in profile.items() if k != "durations"},
           "train_utterances": len(fly.splits["train"]), "cache_mib": stored / 2**20, "encode_s": encode_s,
           "extract_s": extract_s, "open_s": open_s, "epoch_memory_s": epoch_memory_s,
           "epoch_cache_s": epoch_cache_s, "encode_crops_s": encode_crops_s,
           "load_average": os.getloadavg()[0], "threads": 1}
    print(json.dumps(row))
    # A run from the cache starts at once; on the fly it first encodes everything.
    assert open_s + epoch_cache_s < encode_s + epoch_memory_s
