"""``bench report``: rich tables, CSV / JSON / Markdown exports, and the HTML page rendered by Chromium."""

import io
import json
import re
import shutil
import subprocess

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.cli import app
from tests.plots.synthetic import append_accuracy, write_results

runner = CliRunner()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    path = write_results(tmp_path_factory.mktemp("report") / "r.jsonl", seconds=(10, 25, 50, 100),
                         not_measured={("sa:naive", 100): "skipped"})
    append_accuracy(path, {"sa:naive": 0.36, "kda:torch": 0.33})
    return path


def _report(*args):
    result = runner.invoke(app, ["report", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.stdout  # stderr names each file's code (tests/bench/test_provenance.py)


def test_rich_report_has_cells_exponents_and_crossovers(results):
    out = _report(results)
    assert "Test CPU (2 cores)" in out and out.count("sa:naive") >= 4
    assert "Scaling" in out and "alpha (latency)" in out
    # kda = 0.3 + 2e-3 f overtakes sdpa = 0.05 + 1.2e-6 f^2 at 1783.5 frames (35.7 s, interpolated 35.7 s).
    assert re.search(r"kda:torch\s*│\s*sa:sdpa\s*│[^│]*│\s*fp32\s*│\s*35.7 s", out)


def test_csv_has_one_row_per_cell_at_full_precision(results):
    table = pd.read_csv(io.StringIO(_report(results, "--format", "csv")))
    assert len(table) == 16 and set(table["status"]) == {"ok", "skipped"}
    kda = table[(table["label"] == "kda:torch") & (table["seconds"] == 10)].iloc[0]
    assert kda["median_ms"] == pytest.approx(0.3 + 2e-3 * 499, rel=1e-12)


def test_csv_section_and_json(results):
    crossings = pd.read_csv(io.StringIO(_report(results, "--format", "csv", "--section", "crossovers")))
    assert set(crossings["versus"]) == {"sa:sdpa", "sa:naive"}
    data = json.loads(_report(results, "--format", "json"))
    assert set(data) == {"cells", "scaling", "crossovers", "first_calls"}
    assert len(data["cells"]) == 16 and all(row["median_ms"] is None for row in data["cells"] if row["status"] != "ok")


def test_markdown(results):
    out = _report(results, "--format", "markdown")
    assert "| mixer | seconds | frames |" in out and "### Scaling exponents" in out
    assert "| kda:torch | sa:sdpa |" in out


def test_bad_format_and_file_without_cells(results, tmp_path):
    assert runner.invoke(app, ["report", str(results), "--format", "xml"]).exit_code == 2
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"kind": "header"}\n')
    result = runner.invoke(app, ["report", str(empty)])
    assert result.exit_code == 2 and "no cell rows" in result.output


@pytest.fixture(scope="module")
def page(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("html") / "report.html"
    _report(results, "--html", out, "--paper")
    return out


def test_html_page_is_self_contained(page):
    text = page.read_text()
    assert text.count("<table") == 4  # runs, cells, scaling, crossovers
    assert text.count("src='data:image/png;base64,") == 3  # figure 2, cost model, accuracy-latency
    # Nothing fetched from anywhere: no external src or href.
    assert not re.search(r"""(src|href)=["'](?!data:)""", text)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package (apt-get install -y chromium)")
def test_html_page_renders_in_headless_chromium(page, tmp_path):
    # A probe script, added to a copy, records what Chromium actually decoded: image widths and table rows.
    probe = ("<script>window.addEventListener('load', () => {"
             "document.body.dataset.images = JSON.stringify("
             "[...document.images].map(i => i.complete ? i.naturalWidth : -1));"
             "document.body.dataset.rows = JSON.stringify("
             "[...document.querySelectorAll('table')].map(t => t.rows.length));"
             "});</script>")
    copy = tmp_path / "probe.html"
    copy.write_text(page.read_text().replace("</body>", probe + "</body>"))
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
               copy.as_uri()]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, f"chromium printed no DOM: {dom[:300]!r}"
    images = json.loads(re.search(r'data-images="([^"]*)"', body.group(1)).group(1).replace("&quot;", '"'))
    rows = json.loads(re.search(r'data-rows="([^"]*)"', body.group(1)).group(1).replace("&quot;", '"'))
    assert len(images) == 3 and all(width > 500 for width in images)
    # runs: header + 1; cells: header + 16; scaling: header + 4 series; crossovers: header + 2 x 2.
    assert rows == [2, 17, 5, 5]
