"""Phases of a cell that the sweep's display shows while they run: today, the first (warm-up) call.

A cell's first call is where fla's kernels compile and autotune (100 s for KDA on a fresh H200),
so the display says so with a live timer instead of sitting still. The measuring code marks the
phase with ``with phase(FIRST_CALL):``; whoever runs the cell listens with ``watching(callback)``,
and the callback gets ``(name, started)`` at both ends. A spawned worker's callback sends these
to the parent over its pipe (``bench.runner``); without a listener, marking costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

FIRST_CALL = "first call"

Watcher = Callable[[str, bool], None]
_watcher: ContextVar[Watcher | None] = ContextVar("bench_phase_watcher", default=None)


@dataclass(frozen=True)
class PhaseEvent:
    """A phase began (``started``) or ended; what a worker sends its parent."""

    name: str
    started: bool


@contextmanager
def watching(callback: Watcher) -> Iterator[None]:
    """Call ``callback(name, started)`` for every phase marked inside this block."""
    token = _watcher.set(callback)
    try:
        yield
    finally:
        _watcher.reset(token)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Mark a phase of the current cell for whoever is watching."""
    watcher = _watcher.get()
    if watcher is not None:
        watcher(name, True)
    try:
        yield
    finally:
        if watcher is not None:
            watcher(name, False)
