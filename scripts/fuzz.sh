#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (docs/RELIABILITY.md, "Fuzzing") with clang, ASan and
# UBSan in their own build tree, then runs ctest's fuzz label: every committed corpus replayed
# once, and every target fuzzed for FUZZ_SECONDS from it. scripts/test.sh (CI) calls it.
#   scripts/fuzz.sh      FUZZ_BUILD_DIR (default build-fuzz), FUZZ_SECONDS (30), JOBS (all cores)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${FUZZ_BUILD_DIR:-build-fuzz}
jobs=${JOBS:-$(nproc)}
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
start=$SECONDS
mkdir -p "$build"
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOMPQ_CUDA=OFF \
  -DOMPQ_MPI=OFF -DOMPQ_FUZZ=ON -DOMPQ_FUZZ_SECONDS="${FUZZ_SECONDS:-30}" "${launcher[@]}" \
  > "$build/configure.log" || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j "$jobs" --target ompq_fuzzers
echo "fuzz: built in $((SECONDS - start)) s"
start=$SECONDS
# One fuzzer at a time: each is one process on one core, and CI's other core keeps it steady.
ctest --test-dir "$build" --output-on-failure -L fuzz
echo "fuzz: replayed and fuzzed in $((SECONDS - start)) s"
