#!/usr/bin/env bash
# Builds the CPU code under sanitizers and runs tests in it (docs/RELIABILITY.md, "Sanitizers"):
#   address  AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer): every cpu-labelled
#            test, the e2e runs of ompq_eval and ompq_search, the mpi tests under mpirun -np 2
#   thread   ThreadSanitizer: the data loader, communicator and trainer tests, one OpenMP thread
#   scripts/sanitize.sh [address] [thread]      (default: both, address first)
#   SANITIZE_ALL=1   every e2e and mpi test under ASan (the training runs too: slow)
#   ASAN_BINARIES="core_tests data_tests ..."   the address run builds only these test binaries
#                    and runs each of them whole, instead of ctest's cpu, e2e and mpi tests
#   TSAN_BINARIES="core_tests data_tests"   the thread run builds only these test binaries (default:
#                    core_tests data_tests solver_tests, the three that hold its suites) and runs
#                    the suites of them that it built
#   ASAN_BUILD_DIR, TSAN_BUILD_DIR (build-asan, build-tsan), JOBS (compile jobs, default all cores)
# Any ASan, LSan or TSan report fails the run, also one from a process whose exit status a test
# does not look at (an e2e script expecting an app to fail on bad input): they go to log files,
# and the run ends by printing them.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(address thread)

# The tests ThreadSanitizer runs (ctest -R): the DataLoader with its worker threads and the
# datasets they read; the communicators and the data-parallel gradient path; the Trainer with its
# checkpoints and metrics, and QAT on top of it; the per-thread autocast and bf16 scopes.
tsan_tests='^(DataLoaderTest|ImageFolderTest|ImageFolderCatalogTest|UnreadableImageTest|SyntheticTest|SingleProcessCommunicator|MakeCommunicator|Launch|DistMode|GpuCommunicator|GpuForLocalRank|DataParallel|DataParallelTrainer|ResumePoint|Trainer|Checkpoint|MetricsCsv|Qat|AutocastGuard|LowPrecisionWidenedBf16)\.'

configure() {  # configure KIND DIR
  local launcher=()
  command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  mkdir -p "$2"
  cmake -S . -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOMPQ_CUDA=OFF -DOMPQ_SANITIZE="$1" \
    "${launcher[@]}" > "$2/configure.log" || { cat "$2/configure.log"; exit 1; }
  grep 'sanitizer  ' "$2/configure.log"
}

# report_dir BUILD: where the sanitizer logs of this run go (emptied first).
report_dir() {
  local dir
  dir=$(cd "$1" && pwd)/sanitizer-reports
  rm -rf "$dir" && mkdir -p "$dir"
  echo "$dir"
}

# timed LABEL COMMAND...: runs COMMAND and prints how long it took; returns its status.
timed() {
  local label=$1 start=$SECONDS status=0; shift
  "$@" || status=$?
  echo "sanitize: $label took $((SECONDS - start)) s (exit status $status)"
  return $status
}

# finish STATUS REPORT_DIR: prints every report written there; fails when there is one or when
# STATUS (of the build and tests) is not 0.
finish() {
  local status=$1 reports
  reports=$(find "$2" -type f | sort)
  if [ -n "$reports" ]; then
    for f in $reports; do echo "==== $f"; cat "$f"; done
    echo "sanitize: $(echo "$reports" | wc -l) sanitizer report(s) above" >&2
    return 1
  fi
  return "$status"
}

# ctest_in BUILD ARGS...: the ctest call of both runs.
ctest_in() {
  local build=$1; shift
  ctest --test-dir "$build" --output-on-failure --timeout 1800 "$@"
}

run_address() {
  local build=${ASAN_BUILD_DIR:-build-asan} reports status=0
  configure address "$build"
  reports=$(report_dir "$build")
  # log_path: reports go to files that finish reads (one per process, suffixed with its pid).
  # UBSan ignores it and prints to stderr, but -fno-sanitize-recover ends the process there with
  # exit status 1, which the tests see.
  local asan="log_path=$reports/asan:check_initialization_order=1:strict_init_order=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  # gtest_discover_tests runs each test binary while building (to list its tests): the options
  # apply to those runs too.
  export ASAN_OPTIONS="$asan:detect_leaks=1"
  # The e2e runs that train networks for minutes (train, imagenet, kill-anywhere, disk-full, mpi
  # train, ...) only with SANITIZE_ALL=1: under ASan they would be the longest part of CI
  # (docs/RELIABILITY.md). The short e2e runs of ompq_eval and ompq_search always run.
  local e2e=(-R '^e2e\.(eval|search)_smoke$') mpi=(-R '^mpi\.(tests|lost_rank)$')
  if [ "${SANITIZE_ALL:-0}" = 1 ]; then e2e=(-L e2e -LE mpi) mpi=(-L mpi); fi
  if [ -n "${ASAN_BINARIES:-}" ]; then
    local binary
    for binary in $ASAN_BINARIES; do
      timed "address: build $binary" cmake --build "$build" -j "$jobs" --target "$binary" &&
        timed "address: $binary" "$build/tests/$binary" || { status=$?; break; }
    done
    finish "$status" "$reports"
    return
  fi
  timed "address: build" cmake --build "$build" -j "$jobs" &&
    timed "address: cpu tests" ctest_in "$build" -L cpu &&
    timed "address: e2e tests" ctest_in "$build" "${e2e[@]}" &&
    # No leak check under mpirun: OpenMPI's components are plugins it unloads in MPI_Finalize, so
    # what they leak (about 120 KB in 3,300 allocations for an empty MPI program here) comes with
    # stacks ending in "<unknown module>" that no suppression can name. The code the mpi tests
    # run is leak-checked by the single-process tests above.
    ASAN_OPTIONS="$asan:detect_leaks=0" timed "address: mpi tests" ctest_in "$build" "${mpi[@]}" ||
    status=$?
  finish "$status" "$reports"
}

run_thread() {
  local build=${TSAN_BUILD_DIR:-build-tsan} reports
  configure thread "$build"
  reports=$(report_dir "$build")
  # One OpenMP thread: libgomp is not built with TSan, so the hand-offs at its barriers are
  # invisible to it and every parallel loop would look like a race (docs/RELIABILITY.md).
  export OMP_NUM_THREADS=1
  export TSAN_OPTIONS="log_path=$reports/tsan:second_deadlock_stack=1:halt_on_error=1"
  local status=0 binaries=${TSAN_BINARIES:-core_tests data_tests solver_tests}
  timed "thread: build" cmake --build "$build" -j "$jobs" --target $binaries &&
    timed "thread: loader, communicator and trainer tests" \
      ctest_in "$build" -R "$tsan_tests" ||
    status=$?
  finish "$status" "$reports"
}

for kind in "${kinds[@]}"; do
  case $kind in
    address) run_address ;;
    thread) run_thread ;;
    *) echo "sanitize: unknown sanitizer '$kind' (expected address or thread)" >&2; exit 2 ;;
  esac
done
