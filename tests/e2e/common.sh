# What every end-to-end smoke script starts with; source it first:
#   source "$(dirname "$0")/common.sh"
# Strict mode, a scratch folder $out removed at exit, and the helpers below.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

fail() { echo "FAIL: $*"; exit 1; }

# Debian's dataset-fashion-mnist.
fashion_mnist=/usr/share/datasets/fashion-mnist
have_fashion_mnist() { [ -e "$fashion_mnist/train-images-idx3-ubyte.gz" ]; }
# Ends the script as skipped (ctest's SKIP_REGULAR_EXPRESSION) without Fashion-MNIST.
require_fashion_mnist() {
  have_fashion_mnist && return 0
  echo "SKIP: $fashion_mnist is missing (Debian package dataset-fashion-mnist)"
  exit 0
}

# fingerprint DIR: every file of DIR with its checksum (what must not change).
fingerprint() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 md5sum); }

# kill_once_exists FILE PID LOG: SIGKILLs process PID (started in the background, its output in
# LOG) as soon as FILE exists; fails when the process ended first or FILE never appeared.
kill_once_exists() {
  local file=$1 pid=$2 log=$3
  for _ in $(seq 900); do
    [ -e "$file" ] && break
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2> /dev/null || { cat "$log"; fail "the run ended before $file appeared"; }
  wait "$pid" || true
  [ -e "$file" ] || { cat "$log"; fail "killed after 90 s without $file"; }
}

# expect_error PATTERN ARGS...: "$program" ARGS exits non-zero with exactly one "error:" line
# (apps/app_main.h), which contains PATTERN (a fixed string); its output stays in $out/err.
expect_error() {
  local pattern=$1; shift
  if "$program" "$@" > "$out/err" 2>&1; then fail "accepted: $*"; fi
  grep -qF -- "$pattern" "$out/err" || { cat "$out/err"; fail "message for '$*' lacks '$pattern'"; }
  [ "$(grep -c 'error:' "$out/err")" -eq 1 ] || { cat "$out/err"; fail "not one message for '$*'"; }
}
