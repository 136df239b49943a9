#!/usr/bin/env bash
# Regenerates this run's figures and reports from its measured files, which it only reads.
# Run from anywhere: ./results/runs/nvidia-h200-2026-12-04/make.sh  (BENCH=... to use another `bench`).
# Rerun it after a change to the cost models or the report's columns; commit what changed.
set -euo pipefail
run=results/runs/nvidia-h200-2026-12-04
cd "$(dirname "$0")/../../.."
bench=${BENCH:-bench}

# The measured files are as the GPU machine wrote them: stop if any byte changed.
(cd "$run" && sha256sum --check --quiet SHA256SUMS)

# Figure 2 and the cost-model figure: the paper's sweep (fp32, batch 1, hidden 1024, 4 heads), whose
# cells lie in two files of one device, drawn as one run, with the paper's stated points.
$bench plot "$run/paper-fp32.jsonl" "$run/paper-fp32-rest.jsonl" --paper --out "$run"

# Every file of the run: the tables, then the HTML page with every figure the files support.
$bench report "$run/paper-fp32.jsonl" "$run/paper-fp32-rest.jsonl" "$run/fox-bf16.jsonl" "$run/extra.jsonl" \
    --paper --format markdown --html "$run/report.html" > "$run/report.md"
