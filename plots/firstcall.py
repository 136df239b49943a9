"""Each mixer's first-call time per results file: what compiling and autotuning cost before timing.

A cell's ``warmup_ms`` is its first call, compilation and autotuning included (``bench.timing``).
The first measured cell of a series in a file (file order) is the one that paid the series' first
call in that run: 100 s for ``kda:fla`` on a fresh H200, against a few milliseconds per later call.
A later run with Triton's cache directory kept (``TRITON_CACHE_DIR``) shows how much of it the
cache saves. A resumed file's later sessions pay their own first calls; this table shows the first.
"""

from __future__ import annotations

import pandas as pd

SERIES = ["file", "device_name", "label", "dtype", "batch", "hidden", "heads", "mode", "options"]
"""What identifies one series' cells within one file (``file``: each shard of a run pays its own first calls)."""
COLUMNS = ["file", "device_name", "label", "dtype", "mode", "seconds", "first_call_s", "median_ms"]


def first_calls(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per file and series: the first cell with a ``warmup_ms``, as ``first_call_s``."""
    if cells.empty or "warmup_ms" not in cells:
        return pd.DataFrame(columns=COLUMNS)
    warmup = pd.to_numeric(cells["warmup_ms"], errors="coerce")
    timed = cells[warmup.notna()].assign(first_call_s=warmup[warmup.notna()] / 1e3)
    first = timed.groupby(SERIES, sort=False, dropna=False).head(1)
    return first[COLUMNS].reset_index(drop=True)


def first_calls_display(table: pd.DataFrame) -> pd.DataFrame:
    """The table as people read it: seconds for the first call, milliseconds for a call after it."""
    return pd.DataFrame({
        "mixer": table["label"], "device": table["device_name"], "file": table["file"], "dtype": table["dtype"],
        "mode": table["mode"], "first cell": [f"{s:g} s" for s in table["seconds"]],
        "first call s": [f"{s:.3g}" for s in table["first_call_s"]],
        "then median ms": [f"{m:.3g}" for m in pd.to_numeric(table["median_ms"], errors="coerce")],
    }, columns=["mixer", "device", "file", "dtype", "mode", "first cell", "first call s", "then median ms"])
