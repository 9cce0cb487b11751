#!/usr/bin/env bash
# Issue 16's allocation comparison at equal size, PTQ W2..4 A8, over PTQ seeds: from one FP32
# model, for each size budget, OMPQ's search sets the size (its bit config's size_mib) and the
# Hessian-trace and random baselines are drawn at that size; uniform takes the widest bits within
# the asked budget (OMPQ's rounding may land just under a uniform size); then every allocation is
# quantized once per PTQ seed (the seed picks the calibration images) and the table gives top-1
# per seed, mean and sample standard deviation. Reruns skip finished runs (ompq_train resumes
# its stages; a bit config already written is kept).
#   WEIGHTS=fp32.safetensors MODEL="--model=resnet18 --small_input" \
#     TRAIN_DATA="--dataset=imagenet --data_dir=D --augment=false" SEARCH_DATA=D \
#     scripts/run_ptq_seeds.sh OUT
# Knobs (environment): BUILD (build), MODEL (model flags, both tools), NUM_CLASSES (10),
# TRAIN_DATA (ompq_train's data flags; empty: Fashion-MNIST), SEARCH_DATA (ompq_search --data;
# fashion-mnist), BUDGETS_MB (sizes asked of OMPQ, MiB; required), METHODS ("ompq hessian uniform
# random"), SEEDS ("0 1 2"; random allocation k pairs with the k-th seed), PTQ_ITERS (500),
# TEST_LIMIT (0: all), THREADS (1), EXTRA (more ompq_train flags).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/run_ptq_seeds.sh OUT}
build=${BUILD:-build}
weights=${WEIGHTS:?WEIGHTS: the FP32 safetensors to quantize}
budgets=${BUDGETS_MB:?BUDGETS_MB: one or more size budgets in MiB}
methods=${METHODS:-ompq hessian uniform random}
read -r -a seeds <<< "${SEEDS:-0 1 2}"
read -r -a model <<< "${MODEL:?MODEL: e.g. --model=resnet18 --small_input}"
read -r -a train_data <<< "${TRAIN_DATA:-}"
read -r -a extra <<< "${EXTRA:-}"
threads=--threads=${THREADS:-1}
search=("$build/apps/ompq_search" "${model[@]}" --num_classes="${NUM_CLASSES:-10}" --quant=ptq
        "$threads")
mkdir -p "$out/bits"

# allocate NAME FLAGS...: one bit config (and its search log, which holds the search time).
allocate() {
  local name=$1
  shift
  [ -f "$out/bits/$name.pbtxt" ] && return
  "${search[@]}" "$@" --bits_out="$out/bits/$name.pbtxt" > "$out/bits/$name.log" 2>&1 ||
    { cat "$out/bits/$name.log" >&2; return 1; }
}

# quantize NAME SEED: PTQ of one bit config from the FP32 weights.
quantize() {
  "$build/apps/ompq_train" "${model[@]}" "${train_data[@]}" --quant=ptq --weights="$weights" \
    --bits="$out/bits/$1.pbtxt" --seed="$2" --ptq_iters="${PTQ_ITERS:-500}" \
    --test_limit="${TEST_LIMIT:-0}" --eval_fp32=false "$threads" "${extra[@]}" \
    --output_dir="$out/$1_s$2" > "$out/$1_s$2.log" 2>&1 ||
    { tail -n 20 "$out/$1_s$2.log" >&2; return 1; }
}

with_data=(--weights="$weights" --data="${SEARCH_DATA:-fashion-mnist}")
for budget in $budgets; do
  tag=b$budget
  allocate "${tag}_ompq" --budget_mb="$budget" "${with_data[@]}"
  size=$(sed -n 's/^size_mib: //p' "$out/bits/${tag}_ompq.pbtxt")
  for method in $methods; do
    case $method in
      ompq) names=("${tag}_ompq") ;;
      hessian)
        allocate "${tag}_hessian" --budget_mb="$size" --allocation=hessian "${with_data[@]}"
        names=("${tag}_hessian") ;;
      uniform)
        allocate "${tag}_uniform" --budget_mb="$budget" --allocation=uniform
        names=("${tag}_uniform") ;;
      random)
        names=()
        for k in "${!seeds[@]}"; do
          allocate "${tag}_random$((k + 1))" --budget_mb="$size" --allocation=random \
            --allocation_seed=$((k + 1))
          names+=("${tag}_random$((k + 1))")
        done ;;
      *) echo "run_ptq_seeds.sh: unknown method '$method' (ompq, hessian, uniform, random)" >&2
         exit 1 ;;
    esac
    for k in "${!seeds[@]}"; do
      # One random allocation per seed; every other method quantizes its one config per seed.
      name=${names[$(( ${#names[@]} > 1 ? k : 0 ))]}
      quantize "$name" "${seeds[$k]}"
    done
  done
done

/usr/bin/python3 - "$out" << 'PY' | tee "$out/results.md"
import json, pathlib, re, statistics, sys
out = pathlib.Path(sys.argv[1])
groups = {}
for report in sorted(out.glob("*_s*/report.json")):
    name, seed = report.parent.name.rsplit("_s", 1)
    rows = [r for r in json.loads(report.read_text())["results"] if r["label"] != "fp32"]
    if not rows:
        continue
    log = (out / "bits" / f"{name}.log").read_text()
    search = re.search(r"search ([0-9.]+) s", log)  # uniform and random print no search time
    fp32_mib = float(re.search(r"fp32 ([0-9.]+) MiB", log).group(1))
    budget, method = re.fullmatch(r"b([0-9.]+)_([a-z]+?)\d*", name).groups()
    groups.setdefault((budget, method), []).append(
        dict(seed=int(seed), top1=rows[0]["top1"], size=rows[0]["size_mib"],
             bits=32 * rows[0]["size_mib"] / fp32_mib, bops=rows[0]["bops_g"],
             search=float(search.group(1)) if search else None))
def values(runs, key, digits):
    return " / ".join(sorted({f"{r[key]:.{digits}f}" for r in runs if r[key] is not None})) or "-"
print("| budget asked MiB | allocation | size MiB | avg bits | BOPs G | top-1 per seed | "
      "mean ± std | search s |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for (budget, method), runs in sorted(groups.items()):
    runs.sort(key=lambda r: r["seed"])
    top1 = [r["top1"] for r in runs]
    spread = f" ± {statistics.stdev(top1):.2f}" if len(top1) > 1 else ""
    per_seed = " / ".join(f"s{r['seed']} {r['top1']:.2f}" for r in runs)
    print(f"| {budget} | {method} | {values(runs, 'size', 4)} | {values(runs, 'bits', 3)} | "
          f"{values(runs, 'bops', 3)} | {per_seed} | {statistics.mean(top1):.2f}{spread} | "
          f"{values(runs, 'search', 1)} |")
PY
