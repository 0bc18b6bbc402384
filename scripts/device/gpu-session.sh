#!/usr/bin/env bash
# One lent-GPU session (see prepare.sh): trains the small SAM network through WebGPU for TRAIN_S
# seconds (train.sh), then benchmarks whole-volume embedding of the 2 mm chest CT on the same GPU
# with the trained small network and the paper-size network. Everything lands in $OUT.
#   run(command="bash scripts/device/gpu-session.sh 400", carry=[".device"], timeout_s=590)
set -uo pipefail
TRAIN_S=${1:-400}
OUT=${OUT:-/tmp/out}
bash scripts/device/train.sh "$TRAIN_S"
D=.device
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
W=()
[ -s "$OUT/run/model.samw" ] && W=(--weights "$OUT/run/model.samw")
{
  echo "== bench-embed small (trained) webgpu"
  timeout 60 /tmp/node $D/sam.mjs bench-embed $D/bench/chest-2mm.nii.gz --device webgpu "${W[@]}" --repeat 4 --points 2000
  echo "== bench-embed paper (random init) webgpu"
  timeout 75 /tmp/node $D/sam.mjs bench-embed $D/bench/chest-2mm.nii.gz --device webgpu --config paper --repeat 3 --points 200
} 2>&1 | grep -v artificially | tee "$OUT/bench.log"
