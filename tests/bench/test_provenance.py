"""Mixed code said out loud: ``bench report`` and ``bench plot`` name each file's code and flag a file whose rows
come from different code; ``bench compare`` warns when its two runs differ only in code."""

import json
from pathlib import Path

from typer.testing import CliRunner

from bench.cli import app
from bench.provenance import code_counts, code_identity_lines, compare_lines, identity_of
from tests.plots.synthetic import write_results

runner = CliRunner()
CLEAN = {"mixbench_version": "0.1.0", "git_commit": "c" * 40, "git_dirty": False, "source_sha256": "1" * 64}
EDITED = {**CLEAN, "git_dirty": True, "source_sha256": "2" * 64}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, sessions: list[tuple[dict, list[dict]]], **header) -> Path:
    """One header per (code record, rows) session, as a sweep resumed by other code writes them."""
    with open(path, "w", encoding="utf-8") as f:
        for number, (code, rows) in enumerate(sessions):
            head = {"kind": "header", "device": "cpu", "device_name": "Test CPU", "torch": "2.13", "host": "h",
                    "resumed": number > 0, **header, **code}
            f.write("".join(json.dumps(obj) + "\n" for obj in [head, *rows]))
    return path


def _cells(tmp_path: Path, labels: tuple[str, ...]) -> list[dict]:
    source = write_results(tmp_path / f"cells-{'-'.join(labels)}.jsonl", labels=labels, seconds=(10, 50))
    return [row for row in _lines(source) if row["kind"] == "cell"]


def test_a_sweep_resumed_after_an_edit_is_reported_as_mixed(tmp_path):
    first, second = _cells(tmp_path, ("sa:naive",)), _cells(tmp_path, ("kda:torch",))
    mixed = _write(tmp_path / "mixed.jsonl", [(CLEAN, first), (EDITED, second)])
    assert code_counts(mixed) == {identity_of(CLEAN): 2, identity_of(EDITED): 2}
    ((line, warning),) = code_identity_lines([mixed])
    assert warning and "MIXED CODE" in line and "2 rows by code mixbench 0.1.0, source 111111111111, commit " \
        "cccccccccccc;" in line and "2 rows by code mixbench 0.1.0, source 222222222222, commit cccccccccccc " \
        "+ uncommitted changes" in line
    result = runner.invoke(app, ["report", str(mixed), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert "MIXED CODE" in result.stderr and "MIXED CODE" not in result.stdout


def test_a_resume_that_ran_nothing_and_one_code_are_not_mixed(tmp_path):
    cells = _cells(tmp_path, ("sa:naive",))
    path = _write(tmp_path / "r.jsonl", [(CLEAN, cells), (EDITED, [])])
    assert code_identity_lines([path]) == [(f"{path}: code mixbench 0.1.0, source 111111111111, commit "
                                            "cccccccccccc", False)]
    exported = _write(tmp_path / "e.jsonl", [({**CLEAN, "git_commit": None, "git_dirty": None}, cells)])
    assert "no git commit (not run from a mixbench checkout)" in code_identity_lines([exported])[0][0]


def test_accuracy_rows_are_counted_under_their_own_code(tmp_path):
    cells = _cells(tmp_path, ("sa:naive",))
    accuracy = {"kind": "accuracy", "mixer": "sa", "kernel": "naive", "macro_f1": 0.3, **EDITED}
    path = _write(tmp_path / "r.jsonl", [(CLEAN, [*cells, accuracy])])
    assert code_counts(path) == {identity_of(CLEAN): 2, identity_of(EDITED): 1}


def test_compare_warns_when_only_the_code_differs(tmp_path):
    cells = _cells(tmp_path, ("sa:naive",))
    base = _write(tmp_path / "base.jsonl", [(CLEAN, cells)])
    new = _write(tmp_path / "new.jsonl", [(EDITED, cells)])
    ((line, warning),) = compare_lines([base], [new])
    assert warning and line.startswith("warning: BASE and NEW differ only in code")
    result = runner.invoke(app, ["compare", str(base), str(new)])
    assert result.exit_code == 0, result.output
    assert "warning: BASE and NEW differ only in code" in " ".join(result.stderr.split())

    other_torch = _write(tmp_path / "torch.jsonl", [(EDITED, cells)], torch="2.14")
    ((line, warning),) = compare_lines([base], [other_torch])
    assert not warning and line.startswith("note: BASE and NEW differ in code and in torch:")
    ((line, warning),) = compare_lines([base], [base])
    assert not warning and line.startswith("note: BASE and NEW ran the same code: code mixbench 0.1.0")
    older = write_results(tmp_path / "older.jsonl", labels=("sa:naive",), seconds=(10, 50))  # no code record
    ((line, _),) = compare_lines([older], [new])
    assert line == "note: cannot tell whether BASE and NEW ran the same code: BASE predates the code record"
