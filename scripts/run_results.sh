#!/usr/bin/env bash
# Issue 4's results matrix on Fashion-MNIST with ResNet-20 (docs/RESULTS.md): the FP32 model, then
# QAT (4..8 bits, A8) at 75% of the all-8-bit size and PTQ (2..4 bits, A8) at three budgets, each
# with OMPQ's lp / ilp / projection solvers, the uniform allocation and random allocations of the
# same size (one per seed); every quantized run starts from the same FP32 weights. Prints one
# markdown table (also written to OUT/results.md). Reruns skip finished runs (ompq_train resumes).
#   scripts/run_results.sh [OUT]          (default out/results)
# Knobs (environment): BUILD (build), SEEDS ("1 2 3"), QAT_EPOCHS (1), PTQ_ITERS (500),
# PTQ_BUDGETS ("0.3 0.375 0.45"; empty: no PTQ), QAT_BUDGET (0.75; empty: no QAT), TRAIN_LIMIT
# (0: all), WEIGHTS (FP32 weights to start from instead of training them), EXTRA (more flags).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/results}
build=${BUILD:-build}
seeds=${SEEDS:-1 2 3}
train=("$build/apps/ompq_train" --model=resnet20 --train_limit="${TRAIN_LIMIT:-0}" ${EXTRA:-})
search=("$build/apps/ompq_search" --model=resnet20 --num_classes=10)
mkdir -p "$out"

weights=${WEIGHTS:-$out/fp32/fp32.safetensors}
[ -n "${WEIGHTS:-}" ] || "${train[@]}" --quant=none --output_dir="$out/fp32"

# run QUANT NAME FLAGS...: one quantized run from the FP32 weights.
run() {
  local quant=$1 name=$2
  shift 2
  "${train[@]}" --quant="$quant" --weights="$weights" --qat_epochs="${QAT_EPOCHS:-1}" \
    --ptq_iters="${PTQ_ITERS:-500}" --output_dir="$out/$name" "$@"
}

# matrix QUANT FRACTION: OMPQ's three solvers, then the baselines at the lp run's budget in MiB.
matrix() {
  local quant=$1 fraction=$2 tag="$1_$2"
  for solver in lp ilp projection; do
    run "$quant" "${tag}_ompq_$solver" --solver="$solver" --budget_fraction="$fraction"
  done
  local budget
  budget=$(sed -n 's/^budget_mb: //p' "$out/${tag}_ompq_lp/bits.pbtxt")
  "${search[@]}" --quant="$quant" --budget_mb="$budget" --allocation=uniform \
    --bits_out="$out/${tag}_uniform.pbtxt"
  run "$quant" "${tag}_uniform" --bits="$out/${tag}_uniform.pbtxt"
  for seed in $seeds; do
    "${search[@]}" --quant="$quant" --budget_mb="$budget" --allocation=random \
      --allocation_seed="$seed" --bits_out="$out/${tag}_random$seed.pbtxt"
    run "$quant" "${tag}_random$seed" --bits="$out/${tag}_random$seed.pbtxt"
  done
}

for fraction in ${QAT_BUDGET-0.75}; do matrix qat "$fraction"; done
for fraction in ${PTQ_BUDGETS-0.3 0.375 0.45}; do matrix ptq "$fraction"; done

/usr/bin/python3 - "$out" << 'PY' | tee "$out/results.md"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print("| run | allocation | size MiB | BOPs G | top-1 % | top-5 % |")
print("| --- | --- | --- | --- | --- | --- |")
def cell(value, digits):
    return "" if value is None else f"{value:.{digits}f}"
for report in sorted(out.glob("*/report.json")):
    for row in json.loads(report.read_text()).get("results", []):
        if row["label"] == "fp32" and report.parent.name != "fp32":
            continue  # every quantized run starts from the same FP32 model
        print(f"| {report.parent.name} | {row['label']} | {cell(row['size_mib'], 4)} | "
              f"{cell(row['bops_g'], 3)} | {cell(row['top1'], 2)} | {cell(row['top5'], 2)} |")
PY
