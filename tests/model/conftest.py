"""Fixtures for the model package: a tiny synthetic corpus made once per session by our generator."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.synthetic import MIN_UTTERANCES, synthesize


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 short utterances (0.6-1.0 s): 32 train, 8 development, 8 test. Treat as read-only."""
    out = tmp_path_factory.mktemp("tiny-corpus")
    synthesize(out, utterances=MIN_UTTERANCES, seed=3, durations=(0.6, 1.0))
    return out


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: our tensors are small, and on two shared cores a second OpenMP thread
    makes small ops up to 10x slower (measured), for us and for everyone else on the machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
