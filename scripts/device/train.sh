#!/usr/bin/env bash
# Runs on the lent GPU machine (see prepare.sh): unpacks Node and the Vulkan loaders (setup.sh), then
# trains the small SAM network through WebGPU (Dawn + NVIDIA Vulkan) for SECONDS (default 420); any
# further arguments go to `sam train` (e.g. --init resources/sam-small.samw --seed 1 to continue a model).
# SIGINT at the end makes `sam train` save a checkpoint; model.samw, loss.csv, loss.png and the log
# land in $OUT.
set -uo pipefail
SECONDS_BUDGET=${1:-420}
shift || true
source "$(dirname "$0")/setup.sh"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
mkdir -p "$OUT/run"
timeout --foreground -s INT "$SECONDS_BUDGET" /tmp/node $D/sam.mjs train --data $D/data --data $D/bench --out "$OUT/run" --config small \
  --backend webgpu --iterations 100000 --checkpoint-every 50 --optimizer adam "$@" 2>&1 | tee "$OUT/train.log" | tail -40
rm -rf "$OUT/run/checkpoints"
ls -la "$OUT/run"
