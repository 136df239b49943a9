#!/usr/bin/env bash
# The GPU checks no CPU can make, as one time-boxed script for a short lease (about 9 minutes of wall
# time; see ../shared/notes/offline-gpu-run.md for the wheels to carry). Written 2026-12-04 for what had
# never run on a GPU: fox:flex (fp32, bf16, paper lengths), GSA and the six more fla mixers, energy
# rows, --cuda-graphs for the paper's six, --fp32-precision ieee, bench verify --device cuda, the CUDA tests.
#
#   phase 1 (parallel, scratch files): each fla mixer's and fox:flex's first call compiles and autotunes
#     in its own process; fla keeps its tuning in TRITON_CACHE_DIR (FLA_CACHE_RESULTS=1), so phase 2
#     reuses it. Beside them, equally indifferent to a busy GPU: bench verify and the CUDA tests. Tuning
#     under contention may choose slower tiles than a quiet GPU would: phase 2's latencies are then upper
#     bounds, never flattering.
#   phase 2 (one at a time, nothing else on the GPU): time-boxed sweeps straight into $OUT.
#
# On the device:  OUT=$OUT bash tests/gpu/device_run.sh      (wheels in .whl/, installed first)
# Dry run on CPU: DRY=1 OUT=/tmp/out bash tests/gpu/device_run.sh   (tiny sizes: checks every command parses)
set -u
OUT=${OUT:?set OUT to the folder that comes back}
DRY=${DRY:-0}
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
if [ "$DRY" = 1 ]; then
  DEV=cpu; SEC=10; PAPER=10,25; SCALE=0.2; SIZE="--hidden 64 --heads 2"; FLA="kda"; CG=""
else
  DEV=cuda; SEC=10,100,400; PAPER=10,25,50,100,200,300,400; SCALE=1; SIZE=""; CG="--cuda-graphs"
  FLA="kda retnet lightnet gsa gla deltanet gated_deltanet hgrn2 mamba2 rwkv7"
  if ls .whl/*.whl > /dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .whl/*.whl || { echo "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site
  fi
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
export TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-/tmp/triton-cache}
mkdir -p /tmp/bin /tmp/warm "$OUT"
printf '#!/bin/sh\nexec python3 -c "import sys; sys.argv[0]=\x27bench\x27; from bench.cli import app; app()" "$@"\n' \
  > /tmp/bin/bench && chmod +x /tmp/bin/bench && export PATH=/tmp/bin:$PATH
s() { python3 -c "print(max(5, int($1 * $SCALE)))"; }  # seconds, scaled down for the dry run
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
ENDS="${SEC%%,*}"; [ "${SEC##*,}" != "$ENDS" ] && ENDS="$ENDS,${SEC##*,}"  # shortest and longest

bench env > "$OUT/env.txt" 2>&1
log "phase 1: first calls, verify and CUDA tests in parallel (cap $(s 200) s)"
for m in $FLA fox:flex; do
  timeout "$(s 200)" bench sweep --device $DEV --mixers "$m" --seconds "$ENDS" --reps 1 --budget 0 --no-energy \
    $SIZE --out "/tmp/warm/$m.jsonl" > "/tmp/warm/$m.log" 2>&1 &
done
timeout "$(s 200)" bench sweep --device $DEV --mixers fox:flex --dtype bf16 --seconds "$ENDS" --reps 1 --budget 0 \
  --no-energy $SIZE --out /tmp/warm/fox-bf16.jsonl > /tmp/warm/fox-bf16.log 2>&1 &
timeout "$(s 200)" bench verify --device $DEV --time-limit "$(s 170)" --out "$OUT/verify.jsonl" \
  > "$OUT/verify.log" 2>&1 &
if [ "$DRY" = 1 ]; then
  timeout 120 python3 -m pytest -q -p no:cacheprovider tests/bench/test_energy_counters.py > "$OUT/pytest.log" 2>&1 &
else
  timeout 200 python3 -m pytest -q -p no:cacheprovider -m cuda -rs tests > "$OUT/pytest.log" 2>&1 &
fi
wait
log "phase 1 done"; tail -n 2 /tmp/warm/*.log

log "phase 2a: fox on CUDA (auto picks flex where fla's tiles do not fit), fp32 and bf16"
timeout "$(s 110)" bench sweep --device $DEV --mixers fox,fox:flex --seconds $PAPER --dtype fp32,bf16 $SIZE \
  --time-limit "$(s 100)" --out "$OUT/fox.jsonl" 2>&1 | tail -n 25
log "phase 2b: GSA and the six more fla mixers"
timeout "$(s 90)" bench sweep --device $DEV --mixers gsa,gla,deltanet,gated_deltanet,hgrn2,mamba2,rwkv7 $SIZE \
  --seconds $SEC --dtype fp32,bf16 --time-limit "$(s 80)" --out "$OUT/fla-more.jsonl" 2>&1 | tail -n 25
log "phase 2c: CUDA graphs for the paper's six"
timeout "$(s 70)" bench sweep --device $DEV $CG --mixers sa:sdpa,sa:naive,kda,retnet,lightnet,gsa,fox $SIZE \
  --seconds $SEC --time-limit "$(s 60)" --out "$OUT/cuda-graphs.jsonl" 2>&1 | tail -n 25
log "phase 2d: IEEE fp32 (every fla mixer retunes: new Triton cache keys)"
timeout "$(s 60)" bench sweep --device $DEV --fp32-precision ieee --mixers sa:sdpa,kda,retnet,lightnet $SIZE \
  --seconds "$ENDS" --time-limit "$(s 50)" --out "$OUT/ieee.jsonl" 2>&1 | tail -n 25
log "done"
tar -czf /tmp/triton-cache.tgz -C "$(dirname "$TRITON_CACHE_DIR")" "$(basename "$TRITON_CACHE_DIR")" 2>/dev/null \
  && [ "$(stat -c %s /tmp/triton-cache.tgz)" -lt 15000000 ] && cp /tmp/triton-cache.tgz "$OUT/"
ls -la "$OUT"
