#!/usr/bin/env bash
# Which MNIST recipe makes c1 lock onto the digits for every seed? The time-to-accuracy study of
# issue 3, sized for a lent GPU: with CUDA graphs a 5,000-step run trains in about 10 s on an
# H200, so ten seeds of three recipes should fit in one device call (an estimate: ten processes
# sharing one GPU have not been timed). Each recipe is the `mnist` preset with the --set
# overrides on its line below (the augmented categorical term with the elastic warp, i.e. the
# `mnist-fast` preset, chosen by the CPU studies in benchmarks/results/mnist-fast/README.md, and two
# stronger forms);
# every run evaluates c1 on the test split every 500 steps and the summary says how many seeds
# reached 95% (benchmarks/mnist.py). Runs go to 8,000 steps because
# on the CPU some runs with the elastic warp separated the 4s from the 9s only after 3,000-5,000
# steps (or not by 5,000); read the curves for 5,000.
#
#   DATA=.device/data OUT=results/folder bash benchmarks/recipe_study.sh [SEEDS] [LIMIT_S]
#
# SEEDS defaults to "0 1 2 3 4 5 6 7 8 9"; LIMIT_S (default 150) caps each recipe so that a
# recipe that hangs cannot eat the call. DEVICE (cuda), STEPS (8000) and EVAL_EVERY (500) can be
# changed for a short check on a CPU. Output: one JSON file per recipe and log.txt under OUT (at
# most 7 recipes, so that the files come back from the device machine). log.txt keeps every
# evaluation line, so a recipe stopped by LIMIT_S (its JSON is written only at the end) still
# leaves its curves there. Not yet run on a GPU. A recipe that wins here must then be timed on
# the CPU the target names (benchmarks/mnist.py --device cpu --precision bf16).
set -uo pipefail
DATA=${DATA:-.device/data}
OUT=${OUT:?set OUT to the folder for the results}
SEEDS=${1:-0 1 2 3 4 5 6 7 8 9}
LIMIT=${2:-150}
DEVICE=${DEVICE:-cuda} STEPS=${STEPS:-8000} EVAL_EVERY=${EVAL_EVERY:-500}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

# name | overrides (each a --set KEY=VALUE of infogan train)
RECIPES="
elastic|loss.lambda_augmented=2 loss.augment_stroke=0.5 loss.augment_elastic=2
elastic-3|loss.lambda_augmented=2 loss.augment_stroke=0.5 loss.augment_elastic=3
elastic-lambda-4|loss.lambda_augmented=4 loss.augment_stroke=0.5 loss.augment_elastic=2
"
jobs=$(wc -w <<<"$SEEDS")  # the seeds of a recipe share the GPU, one process each

while IFS='|' read -r name overrides; do
    [ -n "$name" ] || continue
    sets=()
    for override in $overrides; do sets+=(--set "$override"); done
    echo "== $name: ${overrides:-(none)} ($(date -u +%T))" | tee -a "$OUT/log.txt"
    # shellcheck disable=SC2086  # SEEDS is a list of numbers
    timeout "$LIMIT" python benchmarks/mnist.py --device "$DEVICE" --seeds $SEEDS --jobs "$jobs" \
        --steps "$STEPS" --eval-every "$EVAL_EVERY" \
        --data-dir "$DATA" "${sets[@]}" --out "$OUT/study-$name.json" 2>&1 | tee -a "$OUT/log.txt"
done <<<"$RECIPES"
