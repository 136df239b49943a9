"""Fixtures shared by the bench tests."""

from __future__ import annotations

import pytest
import torch

from bench import precision


@pytest.fixture
def restore_precision(monkeypatch):
    """The test leaves the fp32 precision as it found it: the variables ``bench.precision`` sets
    (unset here first, so each test starts from the libraries' defaults) and PyTorch's flags."""
    for name in (precision.TRITON_ENV, precision.REQUEST_ENV):
        monkeypatch.delenv(name, raising=False)
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags
