#!/usr/bin/env bash
# Installs every Debian package ompq needs to build, test and run, and the Python environment that
# runs exported ONNX models (.venv-onnx/ in the repository: ONNX Runtime, onnx, numpy from PyPI, as
# pinned in scripts/onnx_requirements.txt). Idempotent: installs only what is missing, so a second
# run costs one dpkg query and one Python import.
#   SKIP_ONNX_VENV=1  leaves the environment out (no PyPI access); the ONNX Runtime test then skips.
set -euo pipefail
cd "$(dirname "$0")/.."

# oneDNN's CMake config asks for OpenCL (Debian builds it with the OpenCL GPU runtime). clang with
# its libFuzzer and sanitizer runtimes (libclang-rt) and OpenMP (libomp) builds scripts/fuzz.sh's
# fuzz targets.
packages=(
  build-essential cmake ninja-build pkg-config
  libabsl-dev libprotobuf-dev protobuf-compiler
  liblpsolve55-dev libdnnl-dev ocl-icd-opencl-dev opencl-headers libturbojpeg0-dev libpng-dev zlib1g-dev
  libopenmpi-dev openmpi-bin nlohmann-json3-dev libonnx-dev
  libgtest-dev libgmock-dev libbenchmark-dev libexpat1-dev
  dataset-fashion-mnist python3-torch python3-torchvision python3-numpy python3-pil python3-venv
  clang libclang-rt-14-dev libomp-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
else
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

venv=.venv-onnx
requirements=scripts/onnx_requirements.txt
if [ "${SKIP_ONNX_VENV:-0}" = 1 ]; then
  echo "setup: $venv left out (SKIP_ONNX_VENV=1)"
  exit 0
fi
# The installed requirements are recorded in the environment: a changed pin reinstalls.
if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$venv/ompq_requirements.txt" \
   && "$venv/bin/python" -c 'import onnxruntime, onnx, numpy' 2> /dev/null; then
  echo "setup: $venv ready ($("$venv/bin/python" -c 'import onnxruntime; print("onnxruntime", onnxruntime.__version__)'))"
  exit 0
fi
echo "setup: creating $venv (pip install -r $requirements)"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
cp "$requirements" "$venv/ompq_requirements.txt"
