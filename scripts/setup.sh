#!/usr/bin/env bash
# Installs every Debian package ompq needs to build, test and run. Idempotent: installs only what is
# missing, so a second run costs one dpkg query.
set -euo pipefail

# oneDNN's CMake config asks for OpenCL (Debian builds it with the OpenCL GPU runtime).
packages=(
  build-essential cmake ninja-build pkg-config
  libabsl-dev libprotobuf-dev protobuf-compiler
  liblpsolve55-dev libdnnl-dev ocl-icd-opencl-dev opencl-headers libturbojpeg0-dev libpng-dev zlib1g-dev
  libopenmpi-dev openmpi-bin nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  dataset-fashion-mnist python3-torch python3-torchvision python3-numpy python3-pil
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
