#!/usr/bin/env bash
# A nearly full file system: ompq_train with its output folder on a small tmpfs stops at the first
# write that does not fit, with one message that names the file and the system's reason, and a
# non-zero exit; no temporary file stays behind and what it wrote before stays loadable: once there
# is room (the tmpfs made larger) the same command resumes from there and ends with the outputs of
# an uninterrupted run (outputs_equal.py). Two sizes put the full disk in two places: the
# pretraining's first checkpoint (nothing to resume from yet) and QAT's second checkpoint (the
# first one, and every earlier stage's output, must survive).
# Mounting needs root or a user namespace: the script runs in a mount namespace of its own
# (unshare), so the mounts vanish with it; skipped where neither is allowed.
#   disk_full.sh PATH_TO_OMPQ_TRAIN
set -euo pipefail
if [ -z "${OMPQ_DISK_FULL_NAMESPACE:-}" ]; then
  if unshare --mount --map-root-user true 2> /dev/null; then
    OMPQ_DISK_FULL_NAMESPACE=1 exec unshare --mount --map-root-user "$0" "$@"
  fi
  echo "SKIP: cannot mount a small tmpfs here (needs root or user namespaces for unshare)"
  exit 0
fi
source "$(dirname "$0")/common.sh"
require_fashion_mnist
train=$1
program=$train
run=$out/run
# The pretraining checkpoints every 2 steps, QAT too: two writes of each checkpoint at least.
small=(--output_dir="$run" --threads=1 --train_limit=256 --test_limit=100 --batch_size=32
       --eval_batch_size=50 --log_interval=4 --checkpoint_steps=2 --search_images=8 --epochs=1
       --warmup_iterations=2 --qat_epochs=1)

# The uninterrupted run, at the path the others use (the outputs record it), then moved aside.
"$train" "${small[@]}" > "$out/reference.log" 2>&1 || { cat "$out/reference.log"; fail "the uninterrupted run failed"; }
mv "$run" "$out/reference"
bytes() { stat -c %s "$out/reference/$1"; }
fp32=$(bytes fp32.safetensors)
pretrain=$(bytes pretrain_checkpoint.safetensors)
qat=$(bytes qat_checkpoint.safetensors)

# full_at WHAT SIZE_BYTES FILE: the run on a tmpfs of SIZE_BYTES fails writing FILE; with room
# made, the same command resumes and ends as the uninterrupted run did.
full_at() {
  local what=$1 size=$2 file=$3
  mkdir -p "$run"
  mount -t tmpfs -o "size=$size" tmpfs "$run"
  expect_error "$file" "${small[@]}"
  grep -qF "No space left on device" "$out/err" || { cat "$out/err"; fail "$what: the message lacks the reason"; }
  echo "$what: $(grep 'error:' "$out/err")"
  ! ls "$run" | grep -q '\.tmp\.' || { ls -l "$run"; fail "$what: a temporary file stayed behind"; }
  mount -o remount,size=256m "$run"
  "$train" "${small[@]}" > "$out/resumed.log" 2>&1 || { cat "$out/resumed.log"; fail "$what: the run with room again failed"; }
  cp "$out/resumed.log" "$out/resumed_$what.log"
  /usr/bin/python3 "$(dirname "$0")/outputs_equal.py" "$out/reference" "$run" \
    || fail "$what: the resumed run's outputs differ from the uninterrupted run's"
  umount "$run"
  rm -rf "$run"
}

# 1. Room for half the pretraining's checkpoint: its first write fails, nothing to resume from.
full_at pretrain $((pretrain / 2)) "pretrain_checkpoint.safetensors"
grep -qF "no checkpoint was written yet" "$out/err" || { cat "$out/err"; fail "pretrain: the message does not say no checkpoint exists"; }

# 2. Room for the FP32 weights, the pretraining checkpoint and one and a half QAT checkpoints (the
#    pretraining's peak, a checkpoint and its replacement, is two checkpoints, less than that):
#    QAT's first checkpoint fits, its replacement does not.
full_at qat $((fp32 + pretrain + qat * 3 / 2)) "qat_checkpoint.safetensors"
grep -qF "the last good checkpoint, $run/qat_checkpoint.safetensors, is kept" "$out/err" \
  || { cat "$out/err"; fail "qat: the message does not name the checkpoint kept"; }
grep -q '\[pretrain\] finished earlier' "$out/resumed_qat.log" || { cat "$out/resumed_qat.log"; fail "qat: the pretraining ran again"; }
grep -q '\[qat\] resuming from .*qat_checkpoint.safetensors at epoch 1 step [1-9]' "$out/resumed_qat.log" \
  || { cat "$out/resumed_qat.log"; fail "qat: the run with room again did not resume from the kept checkpoint"; }
echo "PASS"
