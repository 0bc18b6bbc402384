#!/usr/bin/env bash
# Test set-up beyond npm (Debian 12, root; idempotent: each part is skipped when already there):
#  1. Mesa 25's lavapipe (a CPU Vulkan driver, from bookworm-backports) so that Dawn (the `webgpu` npm
#     package) finds a WebGPU adapter and the GPU code path is tested on a machine without a GPU.
#     Bookworm's own Mesa 22 is too old for Dawn.
#  2. Debian's Chromium (/usr/bin/chromium) for the UI tests (Playwright drives it; WebGL2 through
#     SwiftShader, see test/e2e/chromium.ts). Playwright's own browser download is not used.
set -euo pipefail
need_lavapipe=1
if ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 && dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q '^2[5-9]\.'; then
  echo "lavapipe (Mesa $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)) already installed"
  need_lavapipe=0
fi
need_chromium=1
if [ -x /usr/bin/chromium ]; then
  echo "chromium already installed ($(dpkg-query -W -f='${Version}' chromium 2>/dev/null || echo unknown version))"
  need_chromium=0
fi
if [ "$need_lavapipe" = 0 ] && [ "$need_chromium" = 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "setup-test-deps: run as root to install mesa-vulkan-drivers (bookworm-backports) and chromium" >&2
  exit 1
fi
if [ "$need_lavapipe" = 1 ]; then
  echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/bookworm-backports.list
fi
apt-get update -qq
if [ "$need_lavapipe" = 1 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers
fi
if [ "$need_chromium" = 1 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
