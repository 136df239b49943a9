"""Files of one device read as one run: the H200 run's two fp32 files, shard files, and what stays apart."""

import json
from pathlib import Path

import pytest

from plots.analysis import crossovers
from plots.load import load_cells
from plots.runs import device_identity, run_name
from tests.plots.synthetic import write_results

H200 = Path(__file__).resolve().parents[2] / "results" / "runs" / "nvidia-h200-2026-12-04"


def _with_header(path: Path, **fields) -> Path:
    """``path`` with its header changed as another machine or a shard would have written it."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[0].update(fields)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _lightnet_against_sdpa(cells):
    table = crossovers(cells)
    return table[(table["label"] == "lightnet:fla") & (table["versus"] == "sa:sdpa")]


def test_the_h200_runs_two_fp32_files_give_lightnet_its_crossover():
    first, rest = H200 / "paper-fp32.jsonl", H200 / "paper-fp32-rest.jsonl"
    assert _lightnet_against_sdpa(load_cells(rest)).empty  # alone, the second file has no SA
    cells = load_cells(first, rest)
    assert cells["source"].nunique() == 1
    found = _lightnet_against_sdpa(cells)
    assert len(found) == 1 and found["note"].iloc[0] == "crosses"
    # lightnet:fla 1.16 ms against sa:sdpa 1.25 at 50 s, 1.12 against 0.559 at 25 s: it crosses between.
    assert 25 < found["crossover_s"].iloc[0] < 50


def test_shards_of_one_device_merge_as_one_run(tmp_path):
    # Three shards on three nodes of one GPU model: one mixer each, SA in the first only.
    shards = [_with_header(write_results(tmp_path / f"sweep-{k}of3.jsonl", labels=(label,)), shard=f"{k}/3",
                           host=f"node{k}", device="cuda", device_name="NVIDIA H200")
              for k, label in enumerate(("sa:sdpa", "kda:torch", "fox:torch"), 1)]
    cells = load_cells(*shards)
    assert set(cells["source"]) == {str(tmp_path / "sweep-1of3.jsonl + sweep-2of3.jsonl + sweep-3of3.jsonl")}
    assert set(cells["file"]) == set(map(str, shards))
    table = crossovers(cells)
    assert set(table["label"]) == {"kda:torch", "fox:torch"} and set(table["versus"]) == {"sa:sdpa"}


def test_other_devices_thread_counts_and_repeated_cells_stay_apart(tmp_path):
    sa = write_results(tmp_path / "sa.jsonl", labels=("sa:sdpa",))
    kda = write_results(tmp_path / "kda.jsonl", labels=("kda:torch",))
    other = write_results(tmp_path / "other.jsonl", labels=("kda:torch",), device_name="Other CPU")
    again = write_results(tmp_path / "again.jsonl", labels=("kda:torch",), slower={"kda:torch": 1.3})
    threads = _with_header(write_results(tmp_path / "threads.jsonl", labels=("fox:torch",)), cpu_threads=4)
    cells = load_cells(sa, kda, other, again, threads)
    runs = cells.groupby("source")["file"].unique().map(lambda files: sorted(Path(f).name for f in files))
    # kda joins sa (same CPU, no common cell); a second kda sweep of that CPU is a comparison, not a shard.
    assert sorted(runs) == [["again.jsonl"], ["kda.jsonl", "sa.jsonl"], ["other.jsonl"], ["threads.jsonl"]]


def test_device_identity_ignores_the_host_and_counts_threads_on_a_cpu_only():
    gpu = {"device": "cuda", "device_name": "NVIDIA H200", "host": "a", "cpu_threads": 16}
    assert device_identity(gpu) == device_identity({**gpu, "host": "b", "cpu_threads": 2})
    cpu = {"device": "cpu", "device_name": "Xeon", "host": "a", "cpu_threads": 1}
    assert device_identity(cpu) == device_identity({**cpu, "host": "b"})
    assert device_identity(cpu) != device_identity({**cpu, "cpu_threads": 2})
    assert device_identity(None) is None


@pytest.mark.parametrize("paths, name", [
    (["r/a.jsonl"], "r/a.jsonl"),
    (["r/a.jsonl", "r/b.jsonl"], "r/a.jsonl + b.jsonl"),
    (["r/a.jsonl", "s/b.jsonl"], "r/a.jsonl + s/b.jsonl"),
    ([f"r/{k}.jsonl" for k in range(5)], "r/0.jsonl + 1.jsonl + 2.jsonl + 2 more"),
])
def test_run_names(paths, name):
    assert run_name(paths) == name
