#!/usr/bin/env bash
# Installs what is missing, builds everything (CUDA too when nvcc exists), runs every test.
#   scripts/test.sh            all tests (gpu-labelled ones skip themselves without a GPU)
#   BUILD_DIR=... JOBS=N       where to build, how many compile jobs (default: number of cores)
#   SANITIZE=0|full            no sanitizer run, or all of scripts/sanitize.sh (default: the
#                              core, data, solver and export tests under ASan + UBSan, the
#                              loader, communicator and trainer suites under TSan)
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
# The core, data, solver and export tests again under AddressSanitizer + UBSan (build-asan), and
# the suites that start threads or hand data between them (the DataLoader's workers, the
# communicators, the per-thread scopes, data parallelism, the Trainer with its checkpoints, QAT)
# under ThreadSanitizer (build-tsan). The layers tests under ASan (clean, but 11 CPU-minutes of
# model parity runs) and the e2e and mpi runs under ASan would bring CI close to its 90 minutes:
# SANITIZE=full (docs/RELIABILITY.md).
case ${SANITIZE:-ci} in
  0) ;;
  full) JOBS=$jobs bash scripts/sanitize.sh ;;
  *)
    ASAN_BINARIES="core_tests data_tests solver_tests export_tests" JOBS=$jobs \
      bash scripts/sanitize.sh address
    JOBS=$jobs bash scripts/sanitize.sh thread
    ;;
esac
# The fuzz targets (clang, their own build tree): every corpus replayed, each target fuzzed 30 s.
[ "${FUZZ:-1}" = 0 ] || JOBS=$jobs bash scripts/fuzz.sh
