"""Training: gradients reach every part (overfit), exact resume after kill -9, DDP equals one process."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mixers
from model import checkpoint
from model.build import build_model
from model.data import load_split, open_corpus
from model.dataset import collate, encode, epoch_order, feature_stats, waveform_stats
from model.features import HashedWords, LogMel
from model.ser import SERConfig
from model.train import _class_weights, run
from model.train_config import TrainConfig, resolve_config

ROOT = Path(__file__).resolve().parents[2]
LINEAR = next((name for name in ("retnet", "kda") if name in mixers.names()), None)


@pytest.mark.parametrize("mixer", ["sa", pytest.param(LINEAR, marks=pytest.mark.skipif(
    LINEAR is None, reason="no linear mixer (retnet, kda) registered yet"))], ids=["sa", f"linear-{LINEAR}"])
def test_overfits_16_utterances_to_zero_loss(tiny_corpus, mixer):
    corpus = open_corpus(tiny_corpus)
    loaded = load_split(corpus, "train")[0][:16]
    speech, text = LogMel(n_mels=20), HashedWords(dim=8)
    data = encode(loaded, corpus.classes, speech, text, *waveform_stats(loaded))
    torch.manual_seed(0)
    model = build_model(SERConfig(mixer=mixer, speech_dim=20, text_dim=8, width=32, heads=2, dropout=0.0, depth=2))
    model.set_normalization(feature_stats(data.speech), feature_stats(data.text))
    # Their first 0.5 s (48 frames) plus transcripts: equal speech lengths keep each step one mixer call.
    batch = collate(data, [(i, 0) for i in range(16)], 48)
    labels = batch.pop("labels")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(600):
        loss = torch.nn.functional.cross_entropy(model(**batch), labels)
        optimizer.zero_grad()
        loss.backward()
        if step == 0:  # every trainable tensor receives a gradient: nothing is cut off from the loss
            silent = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().max() == 0]
            assert not silent
        optimizer.step()
        if loss.item() < 1e-3:
            break
    # "Zero" training loss: below 1e-3 nats (every utterance at > 99.9% probability), within 600 steps.
    assert loss.item() < 1e-3, f"loss {loss.item():.4g} after {step + 1} steps"
    print(f"{mixer}: loss {loss.item():.2e} after {step + 1} steps")


def test_epoch_order_is_seeded_and_crops_fit():
    lengths = [10, 3, 7, 25, 4]
    first = epoch_order(5, seed=1, epoch=2, batch_size=2, crop_frames=5, lengths=lengths)
    assert first == epoch_order(5, seed=1, epoch=2, batch_size=2, crop_frames=5, lengths=lengths)
    assert first != epoch_order(5, seed=1, epoch=3, batch_size=2, crop_frames=5, lengths=lengths)
    assert [len(b) for b in first] == [2, 2, 1]
    picks = [p for b in first for p in b]
    assert sorted(i for i, _ in picks) == list(range(5))
    assert all(0 <= start <= max(lengths[i] - 5, 0) for i, start in picks)


def test_class_weights_are_balanced():
    class Data:
        labels = torch.tensor([0, 0, 0, 1])

        def __len__(self):
            return 4

    # n / (C * n_c): 4 / (3 * 3), 4 / (3 * 1), and 0 for the absent class.
    torch.testing.assert_close(_class_weights(Data(), 3), torch.tensor([4 / 9, 4 / 3, 0.0]))


def test_config_presets_and_validation():
    paper = resolve_config("x", "sa")
    assert (paper.epochs, paper.crop_seconds, paper.batch_size, paper.lr, paper.patience, paper.factor,
            paper.dropout, paper.heads, paper.width, paper.budget, paper.eval_batch_size) == (
        20, 5.5, 32, 1e-4, 5, 0.5, 0.4, 4, 1024, 20_000_000, 1)
    smoke = resolve_config("x", "sa:naive", "smoke", epochs=2)
    assert smoke.epochs == 2 and smoke.width < paper.width
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        resolve_config("x", "sa", "fast")
    with pytest.raises(ValueError, match="expected 0 < factor < 1"):
        resolve_config("x", "sa", factor=2.0)
    with pytest.raises(ValueError, match="has no kernel 'fla'"):
        resolve_config("x", "sa:fla")


TINY = dict(preset="smoke", width=16, heads=2, depth=1, crop_seconds=0.5, eval_batch_size=8, device="cpu", threads=1)


def _flags(**options) -> list[str]:
    return [f"--{key.replace('_', '-')}={value}" for key, value in options.items() if key != "preset"] + [
        f"--preset={options['preset']}"]


def _command(*args, torchrun=False):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"] if torchrun \
        else [sys.executable]
    return [*launcher, "-m", "model", "train", *args]


def _env():
    # One thread per process, as in this process (see conftest), so every run rounds alike.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _weights(run: Path) -> dict:
    return checkpoint.load(run / "best.pt")["model"]


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _in_process(corpus: Path, out: Path, **options) -> None:
    options = {**TINY, **options}
    options.pop("threads")  # set by the conftest fixture for the whole test
    run(resolve_config(str(corpus), "sa", **options), out, report=lambda _: None)


# Runs `python -m model train ...` in a process that SIGKILLs itself inside optimiser step `KILL_AT`:
# an abrupt kill -9 at a chosen point mid-epoch, with no chance to clean up.
KILLER = """
import os, signal, sys, torch
from model.__main__ import app
step, real = [0], torch.optim.AdamW.step
def counting(self, *args, **kwargs):
    step[0] += 1
    if step[0] == int(os.environ["KILL_AT"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, *args, **kwargs)
torch.optim.AdamW.step = counting
app(sys.argv[1:], prog_name="model")
"""


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_equals_uninterrupted(tiny_corpus, tmp_path):
    options = dict(epochs=3, batch_size=2, dropout=0.2)
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    _in_process(tiny_corpus, reference, **options)
    # 32 utterances in batches of 2: 16 steps per epoch; die in step 23, the 7th of epoch 2.
    done = subprocess.run([sys.executable, "-c", KILLER, "train", f"--corpus={tiny_corpus}", f"--out={killed}",
                           *_flags(**TINY, **options)], env={**_env(), "KILL_AT": "23"}, capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert checkpoint.load(killed / "last.pt")["epoch"] == 1
    assert "epoch 2/3" not in (killed / "train.log").read_text()
    config = TrainConfig(**json.loads((killed / "config.json").read_text())["train"])
    run(config, killed, resume=True, report=lambda _: None)
    assert "resuming after epoch 1" in (killed / "train.log").read_text()
    # Exact: same weights bit for bit, same per-epoch and final metrics.
    ours, theirs = _weights(killed), _weights(reference)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert _rows(killed) == _rows(reference)


@pytest.mark.slow
def test_two_gloo_ranks_equal_one_process(tiny_corpus, tmp_path):
    # Batches of 31 then 1 over 32 utterances: shards of 16/15, then 1/0 (rank 1 runs at zero weight).
    options = dict(epochs=2, batch_size=31, dropout=0.0, lr=3e-3)
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    _in_process(tiny_corpus, single, **options)
    done = subprocess.run(_command(f"--corpus={tiny_corpus}", f"--out={ddp}", *_flags(**TINY, **options),
                                   torchrun=True),
                          env=_env(), capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((ddp / "config.json").read_text())["world"] == 2
    ours, theirs = _weights(ddp), _weights(single)
    for key in ours:
        # Tolerance: the all-reduce sums two partial gradients in another order than one process does.
        torch.testing.assert_close(ours[key], theirs[key], atol=1e-5, rtol=1e-5, msg=key)
    metric_keys = ("split", "epoch", "macro_f1", "uar", "accuracy", "confusion")
    strip = [{k: row[k] for k in metric_keys if k in row} for row in _rows(ddp)]
    assert strip == [{k: row[k] for k in metric_keys if k in row} for row in _rows(single)]
    for a, b in zip(_rows(ddp), _rows(single), strict=True):
        if "loss" in a:
            assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
