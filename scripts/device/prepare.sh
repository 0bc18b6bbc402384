#!/usr/bin/env bash
# Builds .device/ (git-ignored), everything a lent GPU machine needs to train SAM with no Node and no
# network there: node.xz, a bundle of the sam CLI, the webgpu package (Dawn) for linux-x64, the
# Vulkan/GL loader debs, and the training set at 2 mm. Then run it with the `device` tool:
#   run(command="bash scripts/device/train.sh 420", carry=[".device"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/../.."
D=.device
mkdir -p $D/debs $D/data $D/node_modules
[ -s $D/node.xz ] || xz -T2 -9e -c "$(command -v node)" > $D/node.xz
npx esbuild scripts/device/sam-entry.ts --bundle --ignore-annotations --main-fields=module,main --platform=node --format=esm --target=node20 --minify-whitespace --minify-syntax \
  --external:*.node --external:onnxruntime-node --external:webgpu --external:dcmjs \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
  --outfile=$D/sam.mjs --log-level=warning
# the engine's worker-thread entries beside it (compute/start-thread.ts looks for <name>.js beside the
# bundle): without them the body masks, the NCC searches, the host matcher and the dense tail ran on
# the main thread there; .device/package.json makes the .js files ES modules
for w in main/engine/volume/mask-worker.ts main/engine/bench/ncc-match-worker.ts main/engine/sam/match-worker.ts \
  main/engine/register/deform/box-sum-worker.ts main/engine/register/cascade-tail-worker.ts; do
  npx esbuild "$w" --bundle --ignore-annotations --main-fields=module,main --platform=node --format=esm --target=node20 \
    --minify-whitespace --minify-syntax --external:*.node --external:onnxruntime-node --external:webgpu --external:dcmjs \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
    --outfile="$D/$(basename "${w%.ts}").js" --log-level=warning
done
echo '{ "type": "module" }' > $D/package.json
# the bundle travels xz-compressed too (1.4 MB -> 0.4; the kit must stay under the 64 MiB a call
# carries, with the tracked files), unpacked by setup.sh
xz -T2 -9 -f $D/sam.mjs
rm -rf $D/node_modules/webgpu && mkdir -p $D/node_modules/webgpu/dist
cp node_modules/webgpu/package.json node_modules/webgpu/index.js $D/node_modules/webgpu/
# dawn.node travels xz-compressed (21 MB -> a few), unpacked by train.sh
xz -T2 -9 -c node_modules/webgpu/dist/linux-x64/dawn.node > $D/dawn.node.xz
if [ -z "$(ls $D/debs)" ]; then
  mkdir -p /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -qq
  (cd $D/debs && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
[ -n "$(ls $D/data)" ] || npx tsx scripts/device/prepare-data.ts $D/data ../shared/data
mkdir -p $D/bench
[ -s $D/bench/chest-2mm.nii.gz ] || npx tsx scripts/device/prepare-bench.ts $D/bench/chest-2mm.nii.gz ../shared/data
du -sh $D; du -sh $D/*
