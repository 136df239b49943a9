"""Atomic checkpoints that load with ``torch.load(weights_only=True)``.

A checkpoint is written to a temporary file beside its target, flushed to disk, then renamed over
the target, so a crash (``kill -9`` included) leaves either the old checkpoint or the new one, never
a torn file. Contents are restricted to what the safe unpickler accepts: tensors, numbers, strings,
None, and lists and dicts of them (state dicts, configuration dicts, metric history). Each checkpoint also
records the code that wrote it (``bench.identity``: mixbench_version, git_commit, git_dirty, source_sha256).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from bench.identity import code_identity


def save(obj: dict, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({**obj, **code_identity()}, buffer)
    write_atomic(path, buffer.getvalue())


def write_atomic(path: Path, data: bytes) -> None:
    """Temporary file beside ``path``, fsynced, renamed over it, directory fsynced: old or new, never torn."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    # Make the rename itself durable.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def load(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location="cpu", weights_only=True)
