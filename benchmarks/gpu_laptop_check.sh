#!/usr/bin/env bash
# Issue 31's GPU part, in one short script for a lent GPU machine: the mnist-laptop preset's
# full run with CUDA graphs, then several seeds trained at once on the one GPU (processes side by
# side, `benchmarks/mnist.py --jobs N`), whose JSON's wall_seconds gives models per minute.
#
#   DATA=path/with/mnist OUT=results/folder bash benchmarks/gpu_laptop_check.sh
#
# DEVICE (default cuda) and STEPS (default: the preset's 5,000) let the same script be tried on
# a CPU first: DEVICE=cpu STEPS=20 OUT=/tmp/x bash benchmarks/gpu_laptop_check.sh. The package is
# used from src/. Output: $OUT/log.txt and one JSON file per part.
set -uo pipefail
DATA=${DATA:-.device/data}
OUT=${OUT:?set OUT to the folder for the results}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-5000}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 INFOGAN_DATA_DIR="$DATA"
LOG="$OUT/log.txt"
part() { echo "== $* ($(date -u +%T))" | tee -a "$LOG"; }
graphs=$([ "$DEVICE" = cpu ] && echo --no-cuda-graphs || echo --cuda-graphs)

part "machine ($DEVICE)"
{ nvidia-smi --query-gpu=name,memory.total --format=csv || lscpu | grep "Model name"; } 2>&1 | tee -a "$LOG"

part "1 mnist-laptop, seeds 0-2 one after another, $graphs"
timeout 200 python benchmarks/mnist.py --preset mnist-laptop --device "$DEVICE" --seeds 0 1 2 --steps "$STEPS" \
    --eval-every 500 "$graphs" --data-dir "$DATA" --out "$OUT/mnist-laptop-$DEVICE-seeds0-2.json" 2>&1 | tee -a "$LOG"

for jobs in 4 8; do
    part "2 mnist-laptop, $jobs seeds side by side"
    seeds=$(seq -s " " 0 $((jobs - 1)))
    timeout 200 python benchmarks/mnist.py --preset mnist-laptop --device "$DEVICE" --seeds $seeds --jobs "$jobs" \
        --threads 1 --steps "$STEPS" --eval-every "$STEPS" "$graphs" --data-dir "$DATA" \
        --out "$OUT/mnist-laptop-$DEVICE-$jobs-at-once.json" 2>&1 | tee -a "$LOG"
done
part done
