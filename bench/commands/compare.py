"""``bench compare BASE NEW``: did a change make any cell slower?

Cells are matched by mixer, kernel, audio length, dtype, batch, width, heads, mode, the harness
options (optimizer step, compile, CUDA graphs, bidirectional) and causality. For each
pair: NEW/BASE ratios of median latency and of peak memory, and a verdict judged against the two
runs' own noise, their p20-p80 spread: ``slower`` when NEW's p20 lies above BASE's p80 (the middle
60% of the two runs' calls do not overlap), ``faster`` in the mirror case, else ``same``. The
command fails (exit 1) when a cell is slower beyond noise by more than ``--fail-above`` (10%), or
when a cell that ran in BASE no longer runs in NEW (oom, timeout, error). Each run's code is named, with a
warning when the two differ only in code (``bench.provenance``).

BASE and NEW may each be several files joined by commas (the shards of one sweep, a cut sweep and
the command that finished it); each side's files must form one run (``plots.runs``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from bench.commands.options import check_files, fail, split_list
from bench.commands.tables import console, frame_table
from bench.provenance import code_identity_lines, compare_lines, say

KEY = ["mixer", "kernel", "seconds", "dtype", "batch", "hidden", "heads", "mode", "options", "causal"]
"""``options`` (optimizer step, compile, CUDA graphs, bidirectional) and ``causal`` as ``plots.load`` fills them."""
MEASURED = ["status", "median_ms", "p20_ms", "p80_ms", "peak_bytes", "device_name", "label"]


def compare_cells(base: pd.DataFrame, new: pd.DataFrame, fail_above: float = 0.10) -> pd.DataFrame:
    """One row per cell in either run: ratios, relative noise, verdict and whether it is a regression."""
    pairs = base[KEY + MEASURED].drop_duplicates(KEY, keep="last").merge(
        new[KEY + MEASURED].drop_duplicates(KEY, keep="last"), on=KEY, how="outer", suffixes=("_base", "_new"),
        indicator=True)
    rows = [_judge(row, fail_above) for _, row in pairs.iterrows()]
    return pd.concat([pairs, pd.DataFrame(rows, index=pairs.index)], axis=1).sort_values(KEY, kind="stable")


def _judge(row: pd.Series, fail_above: float) -> dict:
    if row["_merge"] != "both":
        return {"verdict": "only in BASE" if row["_merge"] == "left_only" else "only in NEW", "regression": False}
    memory = row["peak_bytes_new"] / row["peak_bytes_base"] if row["peak_bytes_base"] > 0 else None
    before, after = row["status_base"], row["status_new"]
    if before != "ok" or after != "ok":
        verdict = f"still {after}" if before == after else f"now {after}"
        return {"verdict": verdict, "regression": before == "ok", "memory_ratio": memory}
    ratio = row["median_ms_new"] / row["median_ms_base"]
    noise = _spread(row, "base") + _spread(row, "new")
    if row["p20_ms_new"] > row["p80_ms_base"]:
        verdict = "slower"
    elif row["p80_ms_new"] < row["p20_ms_base"]:
        verdict = "faster"
    else:
        verdict = "same"
    return {"latency_ratio": ratio, "noise": noise, "verdict": verdict, "memory_ratio": memory,
            "regression": verdict == "slower" and ratio > 1 + fail_above}


def _spread(row: pd.Series, run: str) -> float:
    """Half the p20-p80 range relative to the median: how much this run's calls wander."""
    return (row[f"p80_ms_{run}"] - row[f"p20_ms_{run}"]) / (2 * row[f"median_ms_{run}"])


def compare(
    base: Annotated[str, typer.Argument(help="Results file of the reference run; several files of one run "
                                        "(shards, a finished cut sweep) joined by commas.")],
    new: Annotated[str, typer.Argument(help="Results file of the run to judge; several joined by commas.")],
    fail_above: Annotated[float, typer.Option(help="Fail when a cell is slower beyond noise by more than this "
                                              "fraction (0.10 = 10%).")] = 0.10,
) -> None:
    """NEW/BASE ratios of latency and peak memory per cell; exit 1 on a regression.

    Example: bench compare results/before.jsonl results/after.jsonl --fail-above 0.05
    """
    if fail_above < 0:
        fail(f"--fail-above must be >= 0, got {fail_above}")
    (base_paths, before), (new_paths, after) = _one_run("BASE", base), _one_run("NEW", new)
    say(code_identity_lines(base_paths + new_paths) + compare_lines(base_paths, new_paths))
    screen = console()
    devices = (sorted(set(before["device_name"])), sorted(set(after["device_name"])))
    if devices[0] != devices[1]:
        screen.print(f"[yellow]note: different devices: BASE ran on {', '.join(devices[0])}, NEW on "
                     f"{', '.join(devices[1])}; the ratios compare machines as well as code.[/yellow]")
    table = compare_cells(before, after, fail_above)
    screen.print(frame_table(_display(table), title=f"bench compare: {new} / {base}"))
    _summary(table, fail_above, screen)


def _one_run(side: str, files: str) -> tuple[list[Path], pd.DataFrame]:
    """One side's files and their cells, which must form one run (``plots.runs``: one device, no cell twice)."""
    from plots.load import load_cells

    paths = check_files([Path(p) for p in split_list(files)])
    try:
        cells = load_cells(*paths)
    except ValueError as error:
        fail(str(error))
    runs = list(dict.fromkeys(cells["source"]))
    if len(runs) > 1:
        fail(f"{side} files form {len(runs)} runs ({'; '.join(runs)}), not one: compare files of one device "
             "whose cells do not overlap")
    return paths, cells


def _display(table: pd.DataFrame) -> pd.DataFrame:
    from plots.summary import mib, ms

    def ratio(value) -> str:
        return "" if pd.isna(value) else f"{value:.3f}"

    return pd.DataFrame({
        "mixer": [f"{m}:{k}" for m, k in zip(table["mixer"], table["kernel"])],
        "seconds": [f"{s:g}" for s in table["seconds"]], "dtype": table["dtype"],
        "batch": table["batch"].astype(str),
        "base ms": [ms(v) for v in table["median_ms_base"]], "new ms": [ms(v) for v in table["median_ms_new"]],
        "latency ratio": [ratio(v) for v in table.get("latency_ratio", pd.Series(index=table.index))],
        "noise": ["" if pd.isna(v) else f"+-{100 * v:.1f}%" for v in table.get("noise", pd.Series(index=table.index))],
        "verdict": table["verdict"],
        "base MiB": [mib(v) for v in table["peak_bytes_base"]], "new MiB": [mib(v) for v in table["peak_bytes_new"]],
        "memory ratio": [ratio(v) for v in table.get("memory_ratio", pd.Series(index=table.index))],
    })


def _summary(table: pd.DataFrame, fail_above: float, screen) -> None:
    counts = table["verdict"].value_counts()
    screen.print(", ".join(f"{n} {verdict}" for verdict, n in counts.items()))
    regressions = table[table["regression"]]
    if regressions.empty:
        screen.print(f"no regression: no cell slower than {fail_above:.0%} beyond noise")
        return
    for label, cells in regressions.groupby(regressions["mixer"] + ":" + regressions["kernel"], sort=True):
        at = ", ".join(f"{s:g} s" for s in cells["seconds"])
        worst = cells["latency_ratio"].max()
        screen.print(f"[red]regression: {label} at {at}"
                     + ("" if pd.isna(worst) else f" (up to {worst:.2f}x)") + "[/red]")
    raise typer.Exit(1)
