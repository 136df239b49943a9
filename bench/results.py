"""Results files: JSON lines, one object per line, written one line at a time.

The first line is a ``header`` (run metadata: versions, device, the code's identity from
``bench.identity``, command line); each resumed session appends another header, so rows written after
an edit sit under a header with another ``source_sha256`` (``bench.provenance`` says so). Every
measured cell is one ``cell`` row; other packages append rows of their own kinds (``accuracy`` from
the model package), which readers keep apart.
A line cut short by a crash is ignored on reading and cut off before the next append.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.cases import Case, default_causal

STATUSES = ("ok", "oom", "timeout", "error", "skipped")


@dataclass
class Row:
    """One cell's outcome. Latency in milliseconds, memory in bytes, all at full precision."""

    mixer: str
    kernel: str
    seconds: float
    frames: int
    dtype: str
    batch: int
    hidden: int
    heads: int
    device: str
    mode: str
    status: str
    compile: bool = False
    cuda_graphs: bool = False
    bidirectional: bool = False
    combine: str | None = None
    causal: bool | None = None
    optimizer_step: bool = False
    message: str | None = None
    median_ms: float | None = None
    p20_ms: float | None = None
    p80_ms: float | None = None
    min_ms: float | None = None
    n: int | None = None
    warmup: int | None = None
    warmup_ms: float | None = None
    peak_bytes: int | None = None
    peak_above_bytes: int | None = None
    memory_method: str | None = None
    energy_source: str | None = None
    """Where the energy fields come from: ``nvml`` (GPU board), ``rapl`` (CPU packages), null (none; the
    header's ``energy`` entry says why). See ``bench.energy``."""
    energy_j_per_call: float | None = None
    power_w_mean: float | None = None
    energy_window_s: float | None = None
    energy_calls: int | None = None
    energy_note: str | None = None
    """Why a cell measured with a counter has no energy reading (the counter stalled)."""
    predicted_activation_bytes: int | None = None
    predicted_flops: float | None = None
    predicted_state_bytes: int | None = None
    weight_bytes: int | None = None
    predicted_train_bytes: int | None = None
    """``train`` mode: the cost model's peak above weights and input (saved activations + backward)."""
    state_bytes: int | None = None
    """``stream`` mode: measured recurrent-state bytes after T frames (SA: its KV cache)."""
    sdpa_backend: str | None = None
    """SA ``sdpa``: the kernel PyTorch ran (flash, efficient, cudnn, math), from a profiler trace."""
    procedure: str | None = None
    """What the timed call does, in words (loss, optimizer, state handling)."""
    device_name: str | None = None
    elapsed_s: float | None = None
    fp32_precision: str | None = None
    """What ``--fp32-precision`` asked for; None: each library's own default (``bench.precision``)."""
    fp32_precision_torch: str | None = None
    """fp32 matmul precision PyTorch used (``ieee`` or ``tf32``)."""
    fp32_precision_triton: str | None = None
    """Triton dots' default precision (``ieee``, ``tf32``; ``mixed`` where fla pins some); None on CPU."""
    kind: str = "cell"

    @classmethod
    def for_case(cls, case: Case, status: str, **fields) -> Row:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        return cls(mixer=case.mixer, kernel=case.kernel, seconds=case.seconds, frames=case.frames,
                   dtype=case.dtype, batch=case.batch, hidden=case.hidden, heads=case.heads,
                   device=case.device, mode=case.mode, status=status, compile=case.compile,
                   cuda_graphs=case.cuda_graphs, bidirectional=case.bidirectional, combine=case.combine,
                   causal=case.causal, optimizer_step=case.optimizer_step, **fields)

    @property
    def key(self) -> tuple:
        return row_key(asdict(self))


ROW_DEFAULTS = {"mode": "forward", "compile": False, "cuda_graphs": False, "bidirectional": False,
                "combine": None, "optimizer_step": False}
"""Values of the axes added after the first results files, for rows written before them."""


def with_defaults(row: dict) -> dict:
    """``row`` with every axis present: older files lack mode, compile, causal and the rest."""
    filled = {**ROW_DEFAULTS, **row}
    if filled.get("causal") is None:
        filled["causal"] = default_causal(filled["mixer"], filled["mode"], filled["bidirectional"])
    return filled


def row_key(row: dict) -> tuple:
    """The identity of a cell row, matching ``Case.key``; extra fields do not take part."""
    row = with_defaults(row)
    return (row["mixer"], row["kernel"], float(row["seconds"]), row["dtype"], row["batch"],
            row["hidden"], row["heads"], row["device"], row["mode"], row["compile"], row["cuda_graphs"],
            row["bidirectional"], row["combine"], row["causal"], row["optimizer_step"])


def read_lines(path: Path) -> Iterator[dict]:
    """Every complete JSON object in ``path``; a torn last line (from ``kill -9``) is skipped."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith("\n"):
                return
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not a JSON line ({error.msg})") from None


def read_rows(path: Path, kind: str = "cell") -> list[dict]:
    """Objects of ``kind``; cell rows come with every axis filled (``with_defaults``)."""
    rows = [obj for obj in read_lines(path) if obj.get("kind") == kind]
    return [with_defaults(row) if kind == "cell" and "mixer" in row else row for row in rows]


def read_frame(*paths: Path, kind: str = "cell"):
    """Rows of ``kind`` from one or more files as a pandas DataFrame, with a ``source`` column."""
    import pandas as pd

    frames = []
    for path in paths:
        rows = read_rows(Path(path), kind)
        headers = read_rows(Path(path), "header")
        frame = pd.DataFrame(rows)
        frame["source"] = str(path)
        if headers and "device_name" not in frame:
            frame["device_name"] = headers[0].get("device_name")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


class ResultsWriter:
    """Appends rows durably: each line is written, flushed and fsynced before the next cell runs."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self.done: dict[tuple, dict] = {}
        self.cuts: dict[tuple, float] = {}
        """Seconds each cell cut at a time limit's deadline ran without ending (``cut`` lines), longest kept."""
        if self.path.exists():
            for row in read_rows(self.path):
                self.done[row_key(row)] = row
            for cut in read_rows(self.path, kind="cut"):
                key = tuple(cut["key"])
                self.cuts[key] = max(self.cuts.get(key, 0.0), cut["ran_s"])

    def _repair(self) -> None:
        """Cut a torn last line left by a crash, so the next append starts on a fresh line."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            with open(self.path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)

    def write_header(self, header: dict) -> None:
        self._append({**header, "kind": "header", "resumed": bool(self.done)})

    def write_row(self, row: Row) -> None:
        self._append(asdict(row))
        self.done[row.key] = asdict(row)

    def write_cut(self, case: Case, ran_s: float) -> None:
        """A cell the deadline stopped: no row (the same command measures it again), but how long it ran,
        which the next run's forecast takes as the least it needs."""
        self._append({"kind": "cut", "cell": case.id, "key": list(case.key), "ran_s": ran_s})
        self.cuts[case.key] = max(self.cuts.get(case.key, 0.0), ran_s)

    def _append(self, obj: dict) -> None:
        line = json.dumps(obj, allow_nan=False, default=str) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
