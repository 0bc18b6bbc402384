#!/usr/bin/env bash
# Test set-up beyond npm: Mesa 25's lavapipe (a CPU Vulkan driver, from bookworm-backports) so that
# Dawn (the `webgpu` npm package) finds a WebGPU adapter and the GPU code path is tested on a
# machine without a GPU. Bookworm's own Mesa 22 is too old for Dawn. Needs root and Debian 12.
set -euo pipefail
if ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 && dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q '^2[5-9]\.'; then
  echo "lavapipe (Mesa $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)) already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup-test-deps: run as root to install mesa-vulkan-drivers from bookworm-backports" >&2
  exit 1
fi
echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/bookworm-backports.list
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers
