"""Whether the mixers of one comparison ran at one fp32 arithmetic (``bench.precision``).

A comparison is the fp32 cells of one device and one settings combination (what one Figure 2
draws). Each cell ran at ``effective`` precision: PyTorch's for every kernel, Triton's as well for
fla's. When the mixers of a comparison differ (the default on an Ampere or newer GPU: fla's TF32
against PyTorch's IEEE), reports and figures say so. Files written before rows recorded the
precision get a note on CUDA, where it matters, saying it is unknown.
"""

from __future__ import annotations

import pandas as pd

from bench.precision import effective
from plots.load import SETTINGS


def with_precision(cells: pd.DataFrame) -> pd.DataFrame:
    """``cells`` with an ``fp32_arithmetic`` column: the cell's effective precision, None when unrecorded."""
    cells = cells.copy()
    torch_values = cells["fp32_precision_torch"] if "fp32_precision_torch" in cells else [None] * len(cells)
    triton_values = cells["fp32_precision_triton"] if "fp32_precision_triton" in cells else [None] * len(cells)
    cells["fp32_arithmetic"] = [effective(k, _known(a), _known(b)) for k, a, b in
                                zip(cells["kernel"], torch_values, triton_values)]
    return cells


def notes(cells: pd.DataFrame) -> list[str]:
    """One line per fp32 comparison whose mixers ran at different precisions, or with none recorded."""
    cells = with_precision(cells)
    fp32 = cells[cells["dtype"] == "fp32"]
    lines = []
    for (device, *_settings), group in fp32.groupby(["device_name", *SETTINGS], sort=False):
        where = f"fp32 on {device} ({group['mode'].iloc[0]})"
        recorded = group[group["fp32_arithmetic"].notna()]
        by_value = {value: list(dict.fromkeys(part["label"]))
                    for value, part in recorded.groupby("fp32_arithmetic", sort=True)}
        if len(by_value) > 1:
            spelled = "; ".join(f"{value}: {', '.join(labels)}" for value, labels in by_value.items())
            lines.append(f"{where}: the mixers ran at different matmul precisions ({spelled}); "
                         "`bench sweep --fp32-precision ieee` (or tf32) compares like with like")
        unknown = group[group["fp32_arithmetic"].isna() & group["device"].astype(str).str.startswith("cuda")]
        if len(unknown):
            lines.append(f"{where}: fp32 precision not recorded for {', '.join(dict.fromkeys(unknown['label']))} "
                         "(older files); by default fla's Triton kernels use TF32 on Ampere and newer, PyTorch IEEE")
    return lines


def _known(value):
    return None if value is None or value != value else value
