#!/usr/bin/env bash
# The GPU checks of the speed work in one short script, for a lent GPU machine with minutes of
# time: throughput of the paper's MNIST networks per variant (float32, bf16 autocast,
# torch.compile) at batch 128 and a large batch, then the authors' full MNIST run (5,000 steps,
# batch 128) for 3 seeds in float32 and in bf16, timed without evaluation (target: 30 s).
#
#   DATA=path/with/mnist OUT=results/folder bash benchmarks/gpu_check.sh [quick]
#
# DATA defaults to .device/data (copy ../shared/data/mnist there; .device/ is git-ignored and
# can be carried to the device machine). "quick" skips the compile variants. Every figure is
# written as JSON under OUT beside a log; nothing else is touched.
set -euo pipefail
DATA=${DATA:-.device/data}
OUT=${OUT:?set OUT to the folder for the results}
MODE=${1:-full}
mkdir -p "$OUT"
python -m pip install -q -e . >"$OUT/install.log" 2>&1 || { tail "$OUT/install.log"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.txt"

variants="library d-two-passes bf16"
[ "$MODE" = quick ] || variants="$variants compile bf16-compile"
python benchmarks/throughput.py --device cuda --batch-sizes 128 2048 --variants $variants \
    --steps 50 --warmup 10 --data-dir "$DATA" --out "$OUT/throughput-gpu.json" 2>&1 | tee "$OUT/throughput.log"

for precision in fp32 bf16; do
    python benchmarks/mnist.py --device cuda --seeds 0 1 2 --jobs 1 --eval-every 5000 \
        --precision "$precision" --data-dir "$DATA" --out "$OUT/mnist-gpu-$precision.json" \
        2>&1 | tee "$OUT/mnist-$precision.log"
done
