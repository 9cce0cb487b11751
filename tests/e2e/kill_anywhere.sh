#!/usr/bin/env bash
# Kill anywhere: ompq_train killed (SIGKILL) at random moments of every stage, rerun after each
# kill, ends with the outputs of an uninterrupted run (tests/e2e/kill_anywhere.py says how).
#   kill_anywhere.sh PATH_TO_OMPQ_TRAIN [KILLS]      KILL_SEED=<seed> replays a run's kills
source "$(dirname "$0")/common.sh"
require_fashion_mnist
/usr/bin/python3 "$(dirname "$0")/kill_anywhere.py" "$1" "$fashion_mnist" "$out" "${2:-10}" \
  || { tail -n 30 "$out"/*.log; fail "kill anywhere (logs above)"; }
