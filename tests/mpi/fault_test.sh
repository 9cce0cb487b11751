#!/bin/sh
# A rank dies mid-run: the job must end, non-zero, within a bounded time, saying which rank was
# lost. Two launcher policies:
#   1. mpirun's default: it aborts the job when a rank exits without MPI_Finalize and names it.
#   2. a launcher that lets the job run on (srun without --kill-on-bad-exit; here mpirun with
#      orte_abort_on_non_zero_status=0): only our communicator's watchdog can end the survivor.
# usage: fault_test.sh MPIEXEC MPI_LOST_RANK
set -u
mpiexec=$1
binary=$2
limit=60
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failures=0

# run NAME EXPECTED_REGEX MPIRUN_ARGS... -- BINARY_ARGS...
run() {
  name=$1 expected=$2
  shift 2
  start=$(date +%s)
  timeout $limit "$mpiexec" -n 2 --allow-run-as-root --oversubscribe "$@" >"$log" 2>&1
  rc=$?
  elapsed=$(($(date +%s) - start))
  if [ $rc -eq 124 ]; then
    echo "FAIL $name: still running after ${limit} s (a survivor hangs)"; cat "$log"; failures=$((failures + 1))
  elif ! grep -Eq "$expected" "$log"; then
    echo "FAIL $name: exit $rc after ${elapsed} s without a message matching /$expected/"; cat "$log"
    failures=$((failures + 1))
  elif [ "$name" = launcher_aborts ] && [ $rc -eq 0 ]; then
    echo "FAIL $name: the job exited 0"; cat "$log"; failures=$((failures + 1))
  else
    echo "ok   $name: exit $rc after ${elapsed} s"; grep -E "$expected" "$log" | head -2
  fi
}

run launcher_aborts "process rank 1|lost rank 1" "$binary" 0 5
# With abort disabled mpirun exits 0 whatever its ranks return, so the survivor's own line says
# that it exits non-zero, and why.
run watchdog_names_rank "mpi_lost_rank: rank 0 exits with status 2: .*lost rank 1" \
  --mca orte_abort_on_non_zero_status 0 "$binary" 3 3
exit $failures
