#!/usr/bin/env bash
# The GPU checks of the speed work in one short script, for a lent GPU machine with minutes of
# time. In order of importance, each part under its own time limit so one that hangs cannot eat
# the rest:
#   1. the CUDA tests (tests/test_graphed.py: a captured step trains exactly as the eager one);
#   2. the authors' full MNIST run (5,000 steps, batch 128), 3 seeds, float32 with --cuda-graphs,
#      evaluated once at the end (target: 30 s of training);
#   3. throughput per variant (CUDA graphs, the default, / eager; float32 / bf16) at batch 128 and 2048;
#   4. the same full run without CUDA graphs (1 seed) and with bf16 + CUDA graphs (1 seed).
#
#   DATA=path/with/mnist OUT=results/folder bash benchmarks/gpu_check.sh [full]
#
# DATA defaults to .device/data (copy ../shared/data/mnist there; .device/ is git-ignored and
# can be carried to the device machine). "full" adds the torch.compile variants to part 3.
# The package is used from src/ (no install: the device machine has the dependencies but no
# package index). Output: $OUT/log.txt and one JSON file per part; nothing else is touched.
set -uo pipefail
DATA=${DATA:-.device/data}
OUT=${OUT:?set OUT to the folder for the results}
MODE=${1:-quick}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 INFOGAN_DATA_DIR="$DATA"
LOG="$OUT/log.txt"
part() { echo "== $* ($(date -u +%T))" | tee -a "$LOG"; }

part machine
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee -a "$LOG"
python -c "import torch, sys; print(sys.version.split()[0], torch.__version__)" 2>&1 | tee -a "$LOG"

part "1 CUDA tests"
timeout 120 python -m pytest -q tests/test_graphed.py 2>&1 | tee -a "$LOG"

part "2 full run, fp32, CUDA graphs"
timeout 150 python benchmarks/mnist.py --device cuda --seeds 0 1 2 --jobs 1 --eval-every 5000 \
    --cuda-graphs --data-dir "$DATA" --out "$OUT/mnist-gpu-fp32-graphs.json" 2>&1 | tee -a "$LOG"

part "3 throughput"
variants="library eager bf16 bf16-eager d-two-passes"
[ "$MODE" = full ] && variants="$variants compile bf16-compile"
timeout 150 python benchmarks/throughput.py --device cuda --batch-sizes 128 2048 --variants $variants \
    --steps 200 --warmup 10 --data-dir "$DATA" --out "$OUT/throughput-gpu.json" 2>&1 | tee -a "$LOG"

part "4 full run, fp32 eager and bf16 with CUDA graphs"
timeout 80 python benchmarks/mnist.py --device cuda --seeds 0 --eval-every 5000 --no-cuda-graphs \
    --data-dir "$DATA" --out "$OUT/mnist-gpu-fp32-eager.json" 2>&1 | tee -a "$LOG"
timeout 50 python benchmarks/mnist.py --device cuda --seeds 0 --eval-every 5000 --precision bf16 \
    --cuda-graphs --data-dir "$DATA" --out "$OUT/mnist-gpu-bf16-graphs.json" 2>&1 | tee -a "$LOG"
part done
