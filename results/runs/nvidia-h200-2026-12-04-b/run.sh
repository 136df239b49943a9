#!/usr/bin/env bash
# The second H200 run (2026-12-04, session 11): what had never run on a GPU.
# One prepared script for one device call (~520 s of wall time). Two phases:
#   1. warm (parallel, scratch files): each fla mixer's and fox:flex's first call compiles and autotunes
#      in its own process; fla keeps the tuning in Triton's cache (FLA_CACHE_RESULTS=1), so phase 2 reuses
#      it. Beside them, and equally insensitive to contention: `bench verify --device cuda` and the CUDA tests.
#      Tuning under contention may pick a slower tile than a quiet GPU would; phase 2's latencies are then
#      upper bounds, never flattering.
#   2. measure (sequential, nothing else on the GPU): time-boxed sweeps written straight into $OUT.
# Dry run on CPU: DRY=1 OUT=/tmp/out bash results/runs/nvidia-h200-2026-12-04-b/run.sh
set -u
OUT=${OUT:?set OUT}
DRY=${DRY:-0}
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1
if [ "$DRY" = 1 ]; then
  DEV=cpu; SEC=10; PAPER=10,25; WARM_S=60; SCALE=0.25; HID="--hidden 64 --heads 2"
else
  DEV=cuda; SEC=10,100,400; PAPER=10,25,50,100,200,300,400; WARM_S=210; SCALE=1; HID=""
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONPATH=${PYTHONPATH:-$PWD}
export TRITON_CACHE_DIR=/tmp/triton-cache
mkdir -p /tmp/bin /tmp/warm
printf '#!/bin/sh\nexec python3 -c "import sys; sys.argv[0]=\x27bench\x27; from bench.cli import app; app()" "$@"\n' > /tmp/bin/bench
chmod +x /tmp/bin/bench && export PATH=/tmp/bin:$PATH
s() { python3 -c "print(int($1 * $SCALE))"; }   # seconds, scaled down for the dry run
log() { echo "[$(date -u +%H:%M:%S)] $*"; }

bench env > "$OUT/env.txt" 2>&1
log "phase 1: warm-up, verify and CUDA tests in parallel (cap $(s $WARM_S) s)"
FLA="kda retnet lightnet gsa gla deltanet gated_deltanet hgrn2 mamba2 rwkv7"
[ "$DRY" = 1 ] && FLA="kda retnet"
for m in $FLA fox:flex; do
  timeout "$(s $WARM_S)" bench sweep --device $DEV --mixers "$m" --seconds "${SEC%%,*},${SEC##*,}" --reps 1 \
    --budget 0 $HID --out "/tmp/warm/$m.jsonl" > "/tmp/warm/$m.log" 2>&1 &
done
timeout "$(s $WARM_S)" bench sweep --device $DEV --mixers fox:flex --dtype bf16 --seconds "${SEC%%,*},${SEC##*,}" \
  --reps 1 --budget 0 $HID --out /tmp/warm/fox-bf16.jsonl > /tmp/warm/fox-bf16.log 2>&1 &
timeout "$(s $WARM_S)" bench verify --device $DEV --time-limit "$(s $((WARM_S - 15)))" --out "$OUT/verify-cuda.jsonl" \
  > "$OUT/verify-cuda.log" 2>&1 &
if [ "$DRY" = 1 ]; then
  timeout 60 python3 -m pytest -q -x tests/mixers/test_fox.py -k flex > "$OUT/pytest-cuda.log" 2>&1 &
else
  timeout "$(s $WARM_S)" python3 -m pytest -q -m cuda -p no:cacheprovider > "$OUT/pytest-cuda.log" 2>&1 &
fi
wait
log "phase 1 done"; tail -n 3 /tmp/warm/*.log

log "phase 2a: fox on CUDA (flex by auto, fp32 and bf16, paper lengths)"
timeout "$(s 110)" bench sweep --device $DEV --mixers fox,fox:flex --seconds $PAPER --dtype fp32,bf16 $HID \
  --time-limit "$(s 100)" --out "$OUT/fox.jsonl" 2>&1 | tail -n 30
log "phase 2b: GSA and the six more fla mixers"
timeout "$(s 90)" bench sweep --device $DEV --mixers gsa,gla,deltanet,gated_deltanet,hgrn2,mamba2,rwkv7 $HID \
  --seconds $SEC --time-limit "$(s 80)" --out "$OUT/fla-more.jsonl" 2>&1 | tail -n 30
if [ "$DRY" = 1 ]; then CG=""; else CG="--cuda-graphs"; fi
log "phase 2c: CUDA graphs for the paper's six"
timeout "$(s 70)" bench sweep --device $DEV $CG --mixers sa:sdpa,sa:naive,kda,retnet,lightnet,gsa,fox $HID \
  --seconds $SEC --time-limit "$(s 60)" --out "$OUT/cuda-graphs.jsonl" 2>&1 | tail -n 30
log "phase 2d: fp32 at IEEE precision for the three fla kernels measured at TF32 in the first run"
timeout "$(s 60)" bench sweep --device $DEV --fp32-precision ieee --mixers sa:sdpa,kda,retnet,lightnet $HID \
  --seconds "${SEC%%,*},${SEC##*,}" --time-limit "$(s 50)" --out "$OUT/ieee.jsonl" 2>&1 | tail -n 30
log "done"
tar -czf /tmp/triton-cache.tgz -C /tmp triton-cache 2>/dev/null && \
  [ "$(stat -c %s /tmp/triton-cache.tgz)" -lt 15000000 ] && cp /tmp/triton-cache.tgz "$OUT/"
ls -la "$OUT"
