#!/usr/bin/env bash
# End-to-end check of ompq_train on real Fashion-MNIST data (a slice, to stay quick): every stage
# (pretrain -> search -> qat|ptq -> eval -> export -> report) runs and writes outputs that parse;
# a run killed during QAT resumes from its checkpoint; a run killed during PTQ resumes after the
# units it reconstructed and ends with the model of an uninterrupted run; a rerun skips finished
# stages; a given bit config or FP32 weights skip the search or the pretraining; bad flags and bad
# files end with one clear message and a non-zero exit, and never damage what an earlier run wrote.
#   train_smoke.sh PATH_TO_OMPQ_TRAIN
source "$(dirname "$0")/common.sh"
train=$1
program=$train
require_fashion_mnist
# One thread: the machine running the tests is often busy, and spinning OpenMP threads then crawl.
small=(--threads=1 --train_limit=1024 --test_limit=300 --batch_size=32 --eval_batch_size=100 --log_interval=8
       --checkpoint_steps=4 --search_images=8)
qat=("$train" --output_dir="$out/qat" "${small[@]}" --epochs=1 --warmup_iterations=4 --qat_epochs=3)

# 1. QAT, killed (SIGKILL) once its first mid-epoch checkpoint exists, then the same command.
"${qat[@]}" > "$out/log1" 2>&1 &
kill_once_exists "$out/qat/qat_checkpoint.safetensors" $! "$out/log1"
[ ! -e "$out/qat/quantized.safetensors" ] || fail "QAT finished before the kill"
"${qat[@]}" > "$out/log2" 2>&1 || { cat "$out/log2"; fail "resumed run exited non-zero"; }
grep -q '\[pretrain\] finished earlier' "$out/log2" || { cat "$out/log2"; fail "pretraining ran again"; }
grep -q '\[search\] finished earlier' "$out/log2" || { cat "$out/log2"; fail "the search ran again"; }
grep -q '\[qat\] resuming from .*qat_checkpoint.safetensors at epoch 1 step [1-9]' "$out/log2" \
  || { cat "$out/log2"; fail "QAT did not resume from its checkpoint"; }
for f in config.pbtxt stages.pbtxt metrics.csv fp32.safetensors pretrain_checkpoint.safetensors \
         bits.pbtxt search.safetensors qat_checkpoint.safetensors quantized.safetensors \
         packed.safetensors report.json report.html; do
  [ -s "$out/qat/$f" ] || fail "missing output $f"
done
/usr/bin/python3 - "$out/qat" << 'EOF' || fail "report.json or metrics.csv is wrong"
import csv, json, sys
d = sys.argv[1]
report = json.load(open(f"{d}/report.json"))
assert "resnet20" in json.dumps(report), "report.json does not name the model"
rows = list(csv.DictReader(open(f"{d}/metrics.csv")))
stages = [r["stage"] for r in rows]
assert stages.count("pretrain") == 1 and stages.count("qat") == 3, stages
assert "eval_fp32" in stages and "eval_qat" in stages, stages
top1 = {r["stage"]: float(r["test_top1"]) for r in rows}
assert top1["eval_fp32"] > 20 and top1["eval_qat"] > 20, top1  # above chance (10%)
assert "<svg" in open(f"{d}/report.html").read()
EOF
grep -q 'budget_fraction: 0.75' "$out/qat/config.pbtxt" || fail "config.pbtxt lacks the budget"
# QUANT_QAT, the enum's zero value, is left out of text format; QAT keeps stem and classifier fixed.
! grep -q '^quant:' "$out/qat/bits.pbtxt" && grep -q '^fixed {' "$out/qat/bits.pbtxt" \
  || fail "bits.pbtxt is not a QAT bit config"

# 2. A rerun skips every stage and changes nothing.
before=$(fingerprint "$out/qat")
"${qat[@]}" > "$out/log3" 2>&1 || { cat "$out/log3"; fail "rerun exited non-zero"; }
[ "$(grep -c 'finished earlier' "$out/log3")" -eq 6 ] || { cat "$out/log3"; fail "rerun redid a stage"; }
[ "$before" = "$(fingerprint "$out/qat")" ] || fail "a rerun of a finished run changed its files"

# 3. The written bit config and config read back: QAT from given weights and bits, no search.
"$train" --output_dir="$out/given" "${small[@]}" --weights="$out/qat/fp32.safetensors" \
  --bits="$out/qat/bits.pbtxt" --qat_epochs=1 > "$out/log4" 2>&1 \
  || { cat "$out/log4"; fail "run with --weights and --bits exited non-zero"; }
grep -q '\[pretrain\] skipped' "$out/log4" || { cat "$out/log4"; fail "pretrained despite --weights"; }
grep -q '\[search\] bits from' "$out/log4" || { cat "$out/log4"; fail "searched despite --bits"; }
cmp -s <(grep -v '^weights\|^data' "$out/qat/bits.pbtxt") <(grep -v '^weights\|^data' "$out/given/bits.pbtxt") \
  || fail "the given bit config was not kept"
"$train" --config="$out/given/config.pbtxt" > "$out/log5" 2>&1 \
  || { cat "$out/log5"; fail "config.pbtxt does not run as --config"; }
# Pretraining stays skipped (weights given); the five other stages finished.
[ "$(grep -c 'finished earlier' "$out/log5")" -eq 5 ] || { cat "$out/log5"; fail "--config=config.pbtxt is not the same run"; }

# 4. PTQ from the FP32 weights (2..4 bits: a budget under half the 8-bit size), killed once its
#    first reconstructed unit is checkpointed; the same command resumes after the units finished
#    and ends with the very model (byte for byte) of an uninterrupted run.
ptq=("$train" "${small[@]}" --weights="$out/qat/fp32.safetensors" --quant=ptq --budget_fraction=0.4
     --ptq_iters=40 --calibration_images=64)
"${ptq[@]}" --output_dir="$out/ptq" > "$out/ptq_log1" 2>&1 &
kill_once_exists "$out/ptq/ptq_checkpoint.safetensors" $! "$out/ptq_log1"
[ ! -e "$out/ptq/quantized.safetensors" ] || fail "PTQ finished before the kill"
"${ptq[@]}" --output_dir="$out/ptq" > "$out/ptq_log2" 2>&1 || { cat "$out/ptq_log2"; fail "resumed PTQ run exited non-zero"; }
grep -q '\[ptq\] resuming from .*ptq_checkpoint.safetensors: phase [12], [0-9]* of 10 units done' \
  "$out/ptq_log2" || { cat "$out/ptq_log2"; fail "PTQ did not resume from its checkpoint"; }
for f in bits.pbtxt ptq_checkpoint.safetensors quantized.safetensors packed.safetensors report.json \
         report.html; do
  [ -s "$out/ptq/$f" ] || fail "missing PTQ output $f"
done
grep -q '^quant: QUANT_PTQ$' "$out/ptq/bits.pbtxt" || fail "bits.pbtxt is not a PTQ bit config"
/usr/bin/python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$out/ptq/report.json" \
  || fail "PTQ report.json does not parse"
"${ptq[@]}" --output_dir="$out/ptq_whole" > "$out/ptq_log3" 2>&1 \
  || { cat "$out/ptq_log3"; fail "uninterrupted PTQ run exited non-zero"; }
cmp "$out/ptq/quantized.safetensors" "$out/ptq_whole/quantized.safetensors" \
  || fail "the resumed PTQ ended with another model than the uninterrupted one"

# 5. Bad flags and files: one clear message, non-zero exit, the finished run's folder untouched.
before=$(fingerprint "$out/qat")
sed 's/bits: 8/bits: 9/' "$out/qat/bits.pbtxt" > "$out/bits9.pbtxt"
expect_error ' has 9 bits (expected' "${qat[@]:1}" --bits="$out/bits9.pbtxt"
grep -qF "$out/bits9.pbtxt: " "$out/err" || { cat "$out/err"; fail "the message does not name bits9.pbtxt"; }
printf 'layer { bits: "four" }' > "$out/garbled.pbtxt"
expect_error 'garbled.pbtxt: not a valid BitConfig in protobuf text format (line 1' "${qat[@]:1}" --bits="$out/garbled.pbtxt"
expect_error 'ptq/bits.pbtxt: a bit config for quant ptq, but this run quantizes with qat' "${qat[@]:1}" --bits="$out/ptq/bits.pbtxt"
sed 's/^quant: QUANT_PTQ$/quant: 7/' "$out/ptq/bits.pbtxt" > "$out/quant7.pbtxt"
expect_error "$out/quant7.pbtxt: quant is 7 (expected QUANT_QAT, QUANT_PTQ, QUANT_NONE)" "${qat[@]:1}" --bits="$out/quant7.pbtxt"
expect_error "$out/none.pbtxt: cannot open" "${qat[@]:1}" --bits="$out/none.pbtxt"
expect_error 'feasible' "${qat[@]:1}" --budget_fraction=0.1
expect_error '--quant=int4 (expected qat, ptq or none)' "${qat[@]:1}" --quant=int4
expect_error '--solver=uniform (expected lp, ilp or projection)' "${qat[@]:1}" --solver=uniform
expect_error 'act_bits 12 (expected 2..8)' "${qat[@]:1}" --act_bits=12
expect_error 'qat_epochs must be positive' "${qat[@]:1}" --qat_epochs=0
expect_error 'holds a run of another config' "${qat[@]:1}" --qat_lr=0.5
[ "$before" = "$(fingerprint "$out/qat")" ] || fail "a refused command changed the finished run's files"
expect_error 'epochs must be positive' --output_dir="$out/bad" --epochs=0
expect_error 'unknown model "resnet9000"' --output_dir="$out/bad" --model=resnet9000 --train_limit=64 --test_limit=64
expect_error "$out/nowhere" --output_dir="$out/bad" --data_dir="$out/nowhere"
expect_error 'bad device' --output_dir="$out/bad" --device=tpu
printf 'train { epochs: "two" }' > "$out/bad.pbtxt"
expect_error "$out/bad.pbtxt" --output_dir="$out/bad" --config="$out/bad.pbtxt"
printf 'train { precision: BF16 }' > "$out/bad.pbtxt"
expect_error "$out/bad.pbtxt: not a valid ExperimentConfig in protobuf text format (line 1" \
  --output_dir="$out/bad" --config="$out/bad.pbtxt"
[ ! -e "$out/bad" ] || fail "refused commands created their output folder"
head -c 100 "$out/qat/pretrain_checkpoint.safetensors" > "$out/trunc.safetensors"
mkdir -p "$out/corrupt" && cp "$out/trunc.safetensors" "$out/corrupt/pretrain_checkpoint.safetensors"
expect_error 'pretrain_checkpoint.safetensors' --output_dir="$out/corrupt" "${small[@]}" --epochs=1 --warmup_iterations=4

# 6. A diverging QAT stops with a clear message; what earlier stages wrote stays.
expect_error 'stage qat: training loss became' --output_dir="$out/nan" "${small[@]}" \
  --weights="$out/qat/fp32.safetensors" --bits="$out/qat/bits.pbtxt" --qat_lr=1e12
[ -s "$out/nan/bits.pbtxt" ] || fail "the NaN loss lost the search's output"
grep -q 'name: "qat"' "$out/nan/stages.pbtxt" && fail "a diverged QAT is recorded as finished"

# 7. quant none: the FP32 model alone (any model, here the FashionCnn).
"$train" --output_dir="$out/fp32" "${small[@]}" --model=fashion_cnn --quant=none --epochs=1 \
  --warmup_iterations=4 > "$out/log7" 2>&1 || { cat "$out/log7"; fail "--quant=none exited non-zero"; }
grep -q '\[export\] skipped' "$out/log7" || { cat "$out/log7"; fail "--quant=none exported"; }
[ -s "$out/fp32/report.json" ] || fail "--quant=none wrote no report"
echo "PASS"
