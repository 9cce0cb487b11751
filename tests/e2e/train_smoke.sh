#!/usr/bin/env bash
# End-to-end check of ompq_train on real Fashion-MNIST data (a slice, to stay quick): it trains,
# writes its outputs, resumes instead of redoing work, refuses bad input with a clear message and
# a non-zero exit, and never damages what an earlier run wrote.
#   train_smoke.sh PATH_TO_OMPQ_TRAIN
set -euo pipefail
train=$1
data=/usr/share/datasets/fashion-mnist
if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
  echo "SKIP: $data is missing (Debian package dataset-fashion-mnist)"
  exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
run=("$train" --output_dir="$out/run" --train_limit=1024 --test_limit=500 --epochs=2 --batch_size=64 --warmup_iterations=4 --log_interval=8)

"${run[@]}" > "$out/log1" 2>&1 || { cat "$out/log1"; fail "first run exited non-zero"; }
for f in config.pbtxt metrics.csv checkpoint.safetensors model.safetensors; do
  [ -s "$out/run/$f" ] || fail "missing output $f"
done
[ "$(wc -l < "$out/run/metrics.csv")" -eq 3 ] || fail "metrics.csv should have a header and 2 rows"
grep -q 'epochs: 2' "$out/run/config.pbtxt" || fail "config.pbtxt lacks the resolved epochs"
# A test accuracy far above chance (10%) shows that training happened on real data.
acc=$(tail -1 "$out/run/metrics.csv" | cut -d, -f5)
awk -v a="$acc" 'BEGIN { exit !(a > 50) }' || fail "test top-1 $acc% after 2 small epochs"

# Rerunning the same command resumes: no epoch is trained again, metrics keep their rows.
"${run[@]}" > "$out/log2" 2>&1 || { cat "$out/log2"; fail "rerun exited non-zero"; }
grep -q 'resuming from .* after epoch 2' "$out/log2" || { cat "$out/log2"; fail "rerun did not resume"; }
[ "$(wc -l < "$out/run/metrics.csv")" -eq 3 ] || fail "rerun changed metrics.csv"

# Another config in the same folder is refused and leaves the checkpoint intact.
sum=$(md5sum < "$out/run/checkpoint.safetensors")
if "${run[@]}" --lr=0.2 > "$out/log3" 2>&1; then fail "a different config reused the folder"; fi
grep -q 'another config' "$out/log3" || { cat "$out/log3"; fail "unclear message for a config change"; }
[ "$sum" = "$(md5sum < "$out/run/checkpoint.safetensors")" ] || fail "checkpoint was modified"

# Bad values and bad files: one clear message each, non-zero exit.
expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1; shift
  if "$train" "$@" > "$out/err" 2>&1; then fail "accepted: $*"; fi
  grep -q "$pattern" "$out/err" || { cat "$out/err"; fail "message for '$*' lacks '$pattern'"; }
}
expect_error 'epochs must be positive' --output_dir="$out/bad" --epochs=0
expect_error 'unknown model "resnet9000"' --output_dir="$out/bad" --model=resnet9000 --train_limit=64 --test_limit=64
expect_error "$out/nowhere" --output_dir="$out/bad" --data_dir="$out/nowhere"
expect_error 'bad device' --output_dir="$out/bad" --device=tpu
expect_error 'warmup_iterations must be in \[0, 32)' --output_dir="$out/bad" --train_limit=1024 --test_limit=64 --epochs=2 --warmup_iterations=32
printf 'train { epochs: "two" }' > "$out/bad.pbtxt"
expect_error "$out/bad.pbtxt" --output_dir="$out/bad" --config="$out/bad.pbtxt"
head -c 100 "$out/run/checkpoint.safetensors" > "$out/trunc.safetensors"
mkdir -p "$out/corrupt" && cp "$out/run/config.pbtxt" "$out/corrupt/" && cp "$out/trunc.safetensors" "$out/corrupt/checkpoint.safetensors"
sed -i "s|output_dir: \".*\"|output_dir: \"$out/corrupt\"|" "$out/corrupt/config.pbtxt"
expect_error 'checkpoint.safetensors' "${run[@]:1}" --output_dir="$out/corrupt"
echo "PASS"
