#!/usr/bin/env bash
# Installs what is missing, builds everything (CUDA too when nvcc exists), runs every test.
#   scripts/test.sh            all tests (gpu-labelled ones skip themselves without a GPU)
#   BUILD_DIR=... JOBS=N       where to build, how many compile jobs (default: number of cores)
#   SANITIZE=0                 without the sanitizer runs (scripts/sanitize.sh)
#   FUZZ=0                     without the fuzz targets (scripts/fuzz.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$jobs"
# Two processes of OpenMP would fight over the cores: one test process at a time, each using all.
ctest --test-dir "$build" --output-on-failure --timeout 600
# The CPU tests again under AddressSanitizer + UBSan, the threaded ones under ThreadSanitizer, in
# build trees of their own (build-asan, build-tsan).
[ "${SANITIZE:-1}" = 0 ] || JOBS=$jobs bash scripts/sanitize.sh
# The fuzz targets (clang, their own build tree): every corpus replayed, each target fuzzed 30 s.
[ "${FUZZ:-1}" = 0 ] || JOBS=$jobs bash scripts/fuzz.sh
