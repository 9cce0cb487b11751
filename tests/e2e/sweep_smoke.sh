#!/usr/bin/env bash
# End-to-end check of ompq_sweep on a slice of Fashion-MNIST (a resnet20 pretrained for a few
# steps by the first sweep itself, then given to the others by --weights):
#  - every bad flag ends with one clear message, a non-zero exit, and no folder written;
#  - a sweep of lp, uniform and random (two allocation seeds) at two budgets writes one point
#    file per point, points.csv with a row each and report.html with both charts;
#  - killed while quantizing, the rerun keeps every finished point file unchanged, redoes only
#    the missing ones and ends with the same points.csv rows (timings aside) as an uninterrupted
#    run;
#  - a rerun with other PTQ settings is refused unless --fresh.
#   sweep_smoke.sh OMPQ_SWEEP
source "$(dirname "$0")/common.sh"
program=$1
require_fashion_mnist
small=(--model=resnet20 --train_limit=64 --test_limit=40 --epochs=1 --batch_size=32
       --eval_batch_size=20 --search_images=8 --calibration_images=8 --ptq_iters=2
       --budget_fractions=0.3,0.5 --methods=lp,uniform,random --random_seeds=1,2 --threads=2)

expect_error 'method "hawq" (expected a list of: lp, ilp' "${small[@]}" --methods=lp,hawq \
  --output_dir="$out/bad"
expect_error 'budget fraction 1.5 (expected in (0, 1])' "${small[@]}" --budget_fractions=0.3,1.5 \
  --output_dir="$out/bad"
expect_error '--budget_fractions: "x" is not a number' "${small[@]}" --budget_fractions=x \
  --output_dir="$out/bad"
expect_error '--seeds: "-1" is not an unsigned integer' "${small[@]}" --seeds=-1 \
  --output_dir="$out/bad"
expect_error 'the sweep quantizes by PTQ only' "${small[@]}" --quant=qat --output_dir="$out/bad"
expect_error '--budget_mb is ompq_train'"'"'s; the sweep takes --budgets_mb' "${small[@]}" \
  --budget_mb=0.1 --output_dir="$out/bad"
expect_error 'budget 0.2 of the 8-bit size' "${small[@]}" --budget_fractions=0.2 \
  --output_dir="$out/bad"
expect_error 'weights.safetensors' "${small[@]}" --weights="$out/weights.safetensors" \
  --output_dir="$out/bad"
[ ! -e "$out/bad" ] || fail "a refused command wrote $out/bad"

# The whole sweep, uninterrupted: 2 budgets x (lp + uniform + 2 random) = 8 points.
"$program" "${small[@]}" --output_dir="$out/whole" > "$out/whole.log" 2>&1 \
  || { cat "$out/whole.log"; fail "the sweep exited non-zero"; }
[ "$(ls "$out/whole/points/"*.csv | wc -l)" -eq 8 ] || { ls "$out/whole/points"; fail "not 8 point files"; }
[ "$(tail -n +2 "$out/whole/points.csv" | wc -l)" -eq 8 ] || fail "points.csv has not 8 rows"
[ "$(grep -c '<svg' "$out/whole/report.html")" -eq 2 ] || fail "report.html lacks its two charts"

# Killed once the first point file exists (the second point is in progress), then resumed; from
# the whole run's FP32 model, so that the first point comes quickly and the points are the same.
weights=(--weights="$out/whole/fp32/fp32.safetensors")
"$program" "${small[@]}" "${weights[@]}" --output_dir="$out/run" > "$out/run.log" 2>&1 &
kill_once_exists "$out/run/points/lp_f0.3_a0_s0.csv" $! "$out/run.log"
before=$(fingerprint "$out/run/points")
"$program" "${small[@]}" "${weights[@]}" --output_dir="$out/run" > "$out/resume.log" 2>&1 \
  || { cat "$out/resume.log"; fail "the resumed sweep exited non-zero"; }
grep -qE "\([1-9][0-9]* finished earlier\)" "$out/resume.log" || fail "the resumed sweep skipped no point"
after=$(fingerprint "$out/run/points")
while read -r line; do
  grep -qF -- "$line" <<< "$after" || fail "a finished point changed on resume: $line"
done <<< "$before"
# The results (method, seeds, budget, size, BOPs, top-1, top-5, loss), not the seconds.
results() { cut -d, -f1-10 "$1"; }
[ "$(results "$out/run/points.csv")" = "$(results "$out/whole/points.csv")" ] \
  || { diff <(results "$out/run/points.csv") <(results "$out/whole/points.csv"); fail "resumed points differ"; }

expect_error 'holds a sweep of other settings' "${small[@]}" "${weights[@]}" --ptq_iters=3 \
  --output_dir="$out/run"
"$program" "${small[@]}" "${weights[@]}" --ptq_iters=3 --methods=uniform --budget_fractions=0.5 --fresh \
  --output_dir="$out/run" > "$out/fresh.log" 2>&1 || { cat "$out/fresh.log"; fail "--fresh failed"; }
[ "$(ls "$out/run/points/"*.csv | wc -l)" -eq 1 ] || fail "--fresh kept the old points"
echo "sweep smoke: OK"
