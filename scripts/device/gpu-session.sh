#!/usr/bin/env bash
# One lent-GPU session (see prepare.sh). With INIT (default resources/sam-small.samw) present (a model to continue): first
# benchmarks whole-volume embedding of the 2 mm chest CT with it on the GPU (times inside and outside
# the engine, and the network alone), then continues training it for TRAIN_S seconds (new seed, so
# new patch pairs). Without it: trains from scratch first, then benchmarks the result and the
# paper-size network. Before either, `sam bench-train` (training it/s, GFLOP/s, the weight-gradient
# kernels built-in vs taps vs WGSL, and the WGSL kernel's staged variant). Everything lands in $OUT.
#   run(command="bash scripts/device/gpu-session.sh 170", carry=[".device"], timeout_s=...)
set -uo pipefail
TRAIN_S=${1:-400}
source "$(dirname "$0")/setup.sh"
bench() {
  { echo "== bench-embed small ($1) webgpu"
    timeout 60 /tmp/node $D/sam.mjs bench-embed $D/bench/chest-2mm.nii.gz --device webgpu --weights "$1" --repeat 3 --points 2000
    [ -n "${2:-}" ] && { echo "== bench-embed paper (random init) webgpu"
      timeout 75 /tmp/node $D/sam.mjs bench-embed $D/bench/chest-2mm.nii.gz --device webgpu --config paper --repeat 2 --points 200; }
  } 2>&1 | grep -v artificially | tee -a "$OUT/bench.log"
}
INIT=${INIT:-resources/sam-small.samw}
# training speed: built-in weight-gradient kernel vs per-tap matrix products vs the WGSL kernel
# (issue 3's targets); three training modes per configuration now, hence the longer limit
{ echo "== bench-train webgpu"
  timeout 240 /tmp/node $D/sam.mjs bench-train --backend webgpu --config small,paper --batch 2 --iterations 3 --data $D/data/02-example_ct.nii.gz
} 2>&1 | grep -v artificially | tee -a "$OUT/bench.log"
if [ -s "$INIT" ]; then
  bench "$INIT"
  bash scripts/device/train.sh "$TRAIN_S" --init "$INIT" --seed 1
else
  bash scripts/device/train.sh "$TRAIN_S"
  [ -s "$OUT/run/model.samw" ] && bench "$OUT/run/model.samw" paper
fi
