#!/usr/bin/env bash
# Installs what twinray needs on Debian/Ubuntu, and only what is missing (safe to run again):
# the Vulkan loader and Mesa's CPU driver (lavapipe) to render without a GPU, and cmake, ninja
# and python3 to build shaderc (the GLSL compiler) from source; the Khronos validation layer so
# that the tests fail on any misuse of Vulkan.
set -euo pipefail

# libopenxr-loader1: the OpenXR loader `twinray vr` dlopens (it reports a missing runtime itself).
packages=(mesa-vulkan-drivers libvulkan1 vulkan-validationlayers cmake ninja-build python3 g++ make pkg-config libopenxr-loader1)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: Rust is missing. Install it with rustup (https://rustup.rs), Rust 1.85 or newer, then run this again." >&2
  exit 2
fi
