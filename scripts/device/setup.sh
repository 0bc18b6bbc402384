# Sourced on the lent GPU machine: unpacks the bundle, Node to /tmp/node, Dawn into .device/node_modules, the
# Vulkan/GL loader debs into /, and points the Vulkan and EGL loaders at NVIDIA's driver.
D=.device
[ -s $D/sam.mjs ] || xz -dc $D/sam.mjs.xz > $D/sam.mjs
[ -x /tmp/node ] || { xz -dc $D/node.xz > /tmp/node && chmod +x /tmp/node; }
if [ ! -s $D/node_modules/webgpu/dist/linux-x64/dawn.node ]; then
  mkdir -p $D/node_modules/webgpu/dist/linux-x64 && xz -dc $D/dawn.node.xz > $D/node_modules/webgpu/dist/linux-x64/dawn.node
  for f in $D/debs/*.deb; do dpkg -x "$f" /; done; ldconfig
fi
if [ -e /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
