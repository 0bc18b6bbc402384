#!/usr/bin/env bash
# Runs on the lent GPU machine (see prepare.sh): unpacks Node and the Vulkan loaders, then trains the
# small SAM network through WebGPU (Dawn + NVIDIA Vulkan) for SECONDS (default 420). SIGINT at the
# end makes `sam train` save a checkpoint; model.samw, loss.csv, loss.png and the log land in $OUT.
set -uo pipefail
SECONDS_BUDGET=${1:-420}
shift || true
D=.device
xz -dc $D/node.xz > /tmp/node && chmod +x /tmp/node
mkdir -p $D/node_modules/webgpu/dist/linux-x64 && xz -dc $D/dawn.node.xz > $D/node_modules/webgpu/dist/linux-x64/dawn.node
for f in $D/debs/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT/run"
timeout -s INT "$SECONDS_BUDGET" /tmp/node $D/sam.mjs train --data $D/data --out "$OUT/run" --config small \
  --backend webgpu --iterations 100000 --checkpoint-every 50 --optimizer adam "$@" 2>&1 | tee "$OUT/train.log" | tail -40
rm -rf "$OUT/run/checkpoints"
ls -la "$OUT/run"
