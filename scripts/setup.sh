#!/usr/bin/env bash
# Installs what twinray needs on Debian/Ubuntu, and only what is missing (safe to run again):
# the Vulkan loader and Mesa's CPU driver (lavapipe) to render without a GPU, and cmake, ninja
# and python3 to build shaderc (the GLSL compiler) from source; the Khronos validation layer so
# that the tests fail on any misuse of Vulkan.
set -euo pipefail

# xvfb, xauth and the X client libraries that winit loads at run time: the studio window's
# smoke test runs under a virtual X server. libopenxr-loader1: the OpenXR loader `twinray vr`
# dlopens (it reports a missing runtime itself). ffmpeg: `twinray replay --video` encodes with it
# and a test checks the video with ffprobe. Narration: ALSA (libasound2-dev, for cpal) and
# libopus-dev to build; espeak-ng and sox make the speech the voice tests record, and
# opus-tools (opusinfo, opusdec) checks the exported .opus files independently.
# The VR tests run `twinray vr` against Monado built headless by ../shared/xr-runtime/build.sh
# (which needs libeigen3-dev, glslang-tools, libvulkan-dev and libudev-dev besides the compilers
# above; it would install them itself, but mid-test) under the OpenXR validation layer
# (openxr-layer-corevalidation).
# postgresql: the institution library's tests start a throwaway PostgreSQL cluster on 127.0.0.1
# (its index); the package's own cluster is not used.
packages=(mesa-vulkan-drivers libvulkan1 vulkan-validationlayers cmake ninja-build python3 g++ make pkg-config
  xvfb xauth libx11-6 libx11-xcb1 libxcursor1 libxrandr2 libxi6 libxkbcommon-x11-0 libopenxr-loader1
  ffmpeg libasound2-dev libopus-dev espeak-ng sox opus-tools
  libeigen3-dev glslang-tools libvulkan-dev libudev-dev openxr-layer-corevalidation
  postgresql)
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
  echo "setup: Rust is missing. Install it with rustup (https://rustup.rs), Rust 1.92 or newer, then run this again." >&2
  exit 2
fi

# ONNX Runtime for `twinray segment`: the shared library from the onnxruntime wheel on PyPI
# (it needs only libc and libstdc++). The Rust side loads it at run time from this fixed path
# (or from TWINRAY_ORT_LIB / ORT_DYLIB_PATH); nothing is downloaded at build time.
ort_version=1.32.0
ort_dir="${XDG_CACHE_HOME:-$HOME/.cache}/twinray-ort"
ort_lib="$ort_dir/libonnxruntime.so.$ort_version"
if [ ! -s "$ort_lib" ]; then
  echo "setup: installing the ONNX Runtime $ort_version library into $ort_dir" >&2
  if ! python3 -m pip --version >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-pip >&2
  fi
  mkdir -p "$ort_dir/wheel"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$ort_dir/wheel" \
    "onnxruntime==$ort_version" >&2
  wheel=$(ls "$ort_dir"/wheel/onnxruntime-"$ort_version"-*.whl | head -n 1)
  # Extract only the library, through a temporary name so an interrupted run leaves no half file.
  python3 - "$wheel" "$ort_lib" <<'PY'
import shutil, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so.")]
    if not names:
        sys.exit(f"setup: {wheel} holds no onnxruntime/capi/libonnxruntime.so.*")
    with z.open(names[0]) as src, open(dest + ".part", "wb") as out:
        shutil.copyfileobj(src, out)
shutil.move(dest + ".part", dest)
PY
  rm -rf "$ort_dir/wheel"
fi

# s3s-fs, an S3-compatible server on a folder: the institution library's tests store lessons in
# it on 127.0.0.1. Built once from crates.io into the cache, like the cargo target (0.14.1 is
# the newest that builds with Rust 1.92).
s3s_version=0.14.1
s3s_root="${XDG_CACHE_HOME:-$HOME/.cache}/twinray-s3s"
if [ ! -x "$s3s_root/bin/s3s-fs" ] || ! "$s3s_root/bin/s3s-fs" --version 2>/dev/null | grep -q "$s3s_version"; then
  echo "setup: building s3s-fs $s3s_version into $s3s_root (once)" >&2
  cargo install --quiet --locked --root "$s3s_root" --features binary "s3s-fs@$s3s_version" >&2
fi
