#!/usr/bin/env bash
# `npm run check:package`: build, package the app for this machine's platform as an unpacked folder
# (electron-builder --dir, with electron-builder.yml's file patterns), then run a real registration in
# that folder's built worker with only the node_modules and model it ships (scripts/check-package.ts).
# Where the Electron binary cannot be installed (ELECTRON_SKIP_BINARY_DOWNLOAD=1) an empty stand-in
# executable takes its place: the check never starts Electron, only the package's Node code, and the
# fuses (which need the real binary) are left out of this build.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d /tmp/sam-package-XXXXXX)
trap 'rm -rf "$out"' EXIT
npx electron-vite build >/dev/null
config=electron-builder.yml
extra=()
if ! node -e "require('electron')" >/dev/null 2>&1; then
  mkdir -p "$out/electron-dist"
  printf '#!/bin/sh\nexit 1\n' >"$out/electron-dist/electron"
  chmod +x "$out/electron-dist/electron"
  sed '/^electronFuses:/,/^[^ ]/{/^electronFuses:/d;/^  /d}' electron-builder.yml >"$out/builder.yml"
  config="$out/builder.yml"
  version=$(node -p "require('./node_modules/electron/package.json').version")
  extra=(-c.electronDist="$out/electron-dist" -c.electronVersion="$version")
  echo "no Electron binary here: packaging with an empty stand-in for it, without fuses"
fi
npx electron-builder --dir --config "$config" "${extra[@]}" -c.directories.output="$out/release" >"$out/builder.log" 2>&1 ||
  { tail -30 "$out/builder.log"; exit 1; }
unpacked=$(ls -d "$out"/release/*-unpacked | head -1)
echo "packaged: $unpacked ($(du -sh "$unpacked" | cut -f1))"
node --import tsx scripts/check-package.ts "$unpacked"
