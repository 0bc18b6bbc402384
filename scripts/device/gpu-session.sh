#!/usr/bin/env bash
# One lent-GPU session (see prepare.sh), in at most two calls of the device tool (each at most 600 s):
#   run(command="bash scripts/device/gpu-session.sh bench", carry=[".device"], timeout_s=600)
#   run(command="bash scripts/device/gpu-session.sh train 300", carry=[".device"], timeout_s=400)
# bench, in the order of what the open issues need measured, each with its own timeout (540 s in all):
#   1. `sam bench-train`: training it/s and GFLOP/s at 2 pairs, small and paper, with every layer's
#      convolution kernels compared (forward: tfjs' naive Conv3D vs the WGSL implicit GEMM; weight
#      gradient: built-in vs per-tap products vs WGSL), and where an iteration's time goes (issue 3);
#   2. `sam bench-embed --on-device --profile`: whole-volume embedding of the 2 mm chest with the
#      shipped model, input and matching on the GPU, per-kernel profile (issue 4);
#   3. `sam bench-reg` on the 2 mm chest: the cascade's time per stage on this machine, NCC matcher
#      (CPU) and SAM matcher with WebGPU embeddings (without the NCC refinement: all on the GPU); the deform stage's instance optimisation
#      on the GPU in both (--deform-on gpu; it prints its prepare / optimise / fold-check split); the SAM
#      one twice, the second in a warm process (GPU programs compiled) (issue 5);
#   4. the paper-size network's embedding time.
# session DEADLINE: the benches, then training in what is left of DEADLINE seconds (one call of the
# device tool when only one fits the session's device time):
#   run(command="bash scripts/device/gpu-session.sh session 560", carry=[".device"], timeout_s=600)
# train SECONDS: continues the shipped model (resources/sam-small.samw) for SECONDS with a new seed
# (new patch pairs; $SEED sets it); without it, trains from scratch. `gpu-session.sh SECONDS` (a number) runs both.
# On WebGPU the network's convolutions run the WGSL forward program by default
# (SAM_CONV_FORWARD=auto), so every benchmark and the training measure it; SAM_CONV_FORWARD=builtin
# gives tfjs' naive Conv3D back.
# Everything lands in $OUT (bench.log, train.log, run/).
set -uo pipefail
MODE=${1:-all}
if [[ "$MODE" =~ ^[0-9]+$ ]]; then TRAIN_S=$MODE; MODE=all; else TRAIN_S=${2:-300}; fi
source "$(dirname "$0")/setup.sh"
INIT=${INIT:-resources/sam-small.samw}
log() { grep --line-buffered -v artificially | tee -a "$OUT/bench.log"; }
benches() {
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1 | log
  { echo "== bench-train webgpu (issue 3)"
    # three weight-gradient modes x two configurations, each a warm-up and 2 timed iterations
    SAM_DAWN_FLAGS=enable-dawn-features=allow_unsafe_apis \
      timeout 220 /tmp/node $D/sam.mjs bench-train --backend webgpu --config small,paper --batch 2 --iterations 2 --profile \
      --data $D/data/02-example_ct.nii.gz
  } 2>&1 | log
  { echo "== bench-embed small ($INIT) webgpu, on the device, profiled (issue 4)"
    SAM_DAWN_FLAGS=enable-dawn-features=allow_unsafe_apis \
      timeout 110 /tmp/node $D/sam.mjs bench-embed $D/bench/chest-2mm.nii.gz --device webgpu --weights "$INIT" --repeat 3 \
      --points 2000 --on-device --tile-bytes 16e9 --profile
  } 2>&1 | log
  { echo "== bench-reg chest 2 mm, NCC matcher (CPU), deform stage on the GPU (issue 5)"
    timeout 60 /tmp/node $D/sam.mjs bench-reg --pairs 1 --sources $D/bench/chest-2mm.nii.gz --spacing 2 --seed 12 --no-elastix \
      --matcher ncc --deform-on gpu
    echo "== bench-reg chest 2 mm, SAM matcher (no NCC refinement: all on the GPU), embeddings and deform stage on WebGPU, 2 runs: cold, then warm (issue 5)"
    timeout 90 /tmp/node $D/sam.mjs bench-reg --pairs 1 --sources $D/bench/chest-2mm.nii.gz --spacing 2 --seed 12 --no-elastix \
      --matcher sam --refine none --weights "$INIT" --device webgpu --deform-on gpu --repeat 2
  } 2>&1 | log
  { echo "== bench-embed paper (random init) webgpu, on the device"
    timeout 60 /tmp/node $D/sam.mjs bench-embed $D/bench/chest-2mm.nii.gz --device webgpu --config paper --repeat 2 --points 200 \
      --on-device --tile-bytes 16e9
  } 2>&1 | log
}
# check: the short re-measurement after changes (at most 350 s of timeouts with the default parts; one
# call when little device time is left):
#   run(command="bash scripts/device/gpu-session.sh check", carry=[".device"], timeout_s=360)
# CHECKS (default "train reg regcpu embed paper"; "trainprof" adds a V8 profile of training, 60 s; "regprof" one of the cascade, 60 s; "embedprof" the embedding's host stats, kernel times and V8 profile, 120 s) picks the parts; SAM_PROFILE=1 prints time splits (matcher, affine, coarse, warp; util/profile.ts).
checks() {
  local only=" ${CHECKS:-train reg regcpu embed paper} "
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1 | log
  [[ $only == *" train "* ]] && { echo "== bench-train small webgpu, 2 pairs, WGSL weight gradient, then one profiled iteration (issue 3)"
    SAM_DAWN_FLAGS=enable-dawn-features=allow_unsafe_apis \
      timeout 90 /tmp/node $D/sam.mjs bench-train --backend webgpu --config small --batch 2 --iterations 8 --no-kernels \
      --no-forward --wgrad wgsl --host-stats --profile --data $D/data/02-example_ct.nii.gz
  } 2>&1 | log
  [[ $only == *" trainprof "* ]] && { echo "== training's host time: a V8 CPU profile of 4 iterations (small), summarised (the profile: \$OUT/train.cpuprofile.xz)"
    rm -rf /tmp/prof
    timeout 60 /tmp/node --cpu-prof --cpu-prof-dir /tmp/prof $D/sam.mjs bench-train --backend webgpu --config small --batch 2 \
      --iterations 4 --no-kernels --no-forward --wgrad wgsl --data $D/data/02-example_ct.nii.gz
    prof=$(ls -S /tmp/prof/*.cpuprofile 2>/dev/null | head -1)
    [ -n "$prof" ] && /tmp/node scripts/cpuprofile-summary.mjs "$prof" --top 40 && xz -T4 -c "$prof" > "$OUT/train.cpuprofile.xz"
  } 2>&1 | log
  [[ $only == *" reg "* ]] && { echo "== bench-reg chest 2 mm, SAM matcher (no NCC refinement: all on the GPU), embeddings and deform stage on WebGPU, cold then twice warm, time splits (SAM_PROFILE) (issue 5)"
    SAM_PROFILE=1 timeout 80 /tmp/node $D/sam.mjs bench-reg --pairs 1 --sources $D/bench/chest-2mm.nii.gz --spacing 2 --seed 12 --no-elastix \
      --matcher sam --refine none --weights "$INIT" --device webgpu --deform-on gpu --repeat 3 --host-stats
    echo "== the default: SAM matches refined by NCC, coarse stage by NCC, both on the GPU (--ncc-on auto), cold then twice warm, time splits"
    SAM_PROFILE=1 timeout 50 /tmp/node $D/sam.mjs bench-reg --pairs 1 --sources $D/bench/chest-2mm.nii.gz --spacing 2 --seed 12 --no-elastix \
      --matcher sam --weights "$INIT" --device webgpu --deform-on gpu --repeat 3 --host-stats
  } 2>&1 | log
  [[ $only == *" embedprof "* ]] && { echo "== bench-embed small ($INIT) webgpu on the device: host stats of the last of 4 embeddings, kernel times of one forward pass, then a V8 CPU profile of 10 embeddings"
    SAM_DAWN_FLAGS=enable-dawn-features=allow_unsafe_apis timeout 60 /tmp/node $D/sam.mjs bench-embed $D/bench/chest-2mm.nii.gz \
      --device webgpu --weights "$INIT" --repeat 4 --points 200 --on-device --host-stats --profile
    rm -rf /tmp/prof
    timeout 60 /tmp/node --cpu-prof --cpu-prof-dir /tmp/prof $D/sam.mjs bench-embed $D/bench/chest-2mm.nii.gz --device webgpu \
      --weights "$INIT" --repeat 10 --points 200 --on-device
    prof=$(ls -S /tmp/prof/*.cpuprofile 2>/dev/null | head -1)
    [ -n "$prof" ] && /tmp/node scripts/cpuprofile-summary.mjs "$prof" --top 40 && xz -T4 -c "$prof" > "$OUT/embed.cpuprofile.xz"
  } 2>&1 | log
  [[ $only == *" regprof "* ]] && { echo "== the cascade's host time: a V8 CPU profile of the default cascade (3 runs, the first cold), summarised"
    rm -rf /tmp/prof
    timeout 60 /tmp/node --cpu-prof --cpu-prof-dir /tmp/prof $D/sam.mjs bench-reg --pairs 1 --sources $D/bench/chest-2mm.nii.gz \
      --spacing 2 --seed 12 --no-elastix --matcher sam --weights "$INIT" --device webgpu --deform-on gpu --repeat 3 | grep -v "^|"
    prof=$(ls -S /tmp/prof/*.cpuprofile 2>/dev/null | head -1)
    [ -n "$prof" ] && /tmp/node scripts/cpuprofile-summary.mjs "$prof" --top 50 && xz -T4 -c "$prof" > "$OUT/reg.cpuprofile.xz"
  } 2>&1 | log
  [[ $only == *" regcpu "* ]] && { echo "== the same with the NCC on the CPU's threads (--ncc-on cpu), cold then warm"
    timeout 40 /tmp/node $D/sam.mjs bench-reg --pairs 1 --sources $D/bench/chest-2mm.nii.gz --spacing 2 --seed 12 --no-elastix \
      --matcher sam --weights "$INIT" --device webgpu --deform-on gpu --ncc-on cpu --repeat 2
  } 2>&1 | log
  [[ $only == *" embed "* ]] && { echo "== bench-embed small ($INIT) webgpu, default tile budget, on the device (issue 4)"
    timeout 40 /tmp/node $D/sam.mjs bench-embed $D/bench/chest-2mm.nii.gz --device webgpu --weights "$INIT" --repeat 3 \
      --points 2000 --on-device
  } 2>&1 | log
  [[ $only == *" paper "* ]] && { echo "== bench-train paper webgpu, 2 pairs, WGSL weight gradient"
    timeout 50 /tmp/node $D/sam.mjs bench-train --backend webgpu --config paper --batch 2 --iterations 2 --no-kernels \
      --no-forward --wgrad wgsl --data $D/data/02-example_ct.nii.gz
  } 2>&1 | log
}
training() {
  # a new seed each run: iteration t's patch pairs come from (seed, t), so a repeated seed would see
  # the previous run's pairs again (run 3 reused run 2's seed 1: its first 100 iterations did)
  local seed=${SEED:-$(date +%s)}
  echo "training seed $seed" | tee -a "$OUT/bench.log"
  if [ -s "$INIT" ]; then bash scripts/device/train.sh "$TRAIN_S" --init "$INIT" --seed "$seed"
  else bash scripts/device/train.sh "$TRAIN_S" --seed "$seed"; fi
}
case "$MODE" in
  session)
    DEADLINE=$TRAIN_S; benches
    LEFT=$((DEADLINE - SECONDS - 15))
    echo "== training for the ${LEFT} s left of ${DEADLINE} s" | tee -a "$OUT/bench.log"
    if [ "$LEFT" -ge 45 ]; then TRAIN_S=$LEFT; training; fi ;;
  bench) benches ;;
  check) checks ;;
  train) training ;;
  all) benches; training ;;
  *) echo "usage: gpu-session.sh bench | check | train SECONDS | session DEADLINE | SECONDS" >&2; exit 2 ;;
esac
