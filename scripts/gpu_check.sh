#!/usr/bin/env bash
# Everything a GPU session must gather, in one command on the GPU machine.
#
# Here (the dev machine, with the CUDA toolkit):
#   scripts/gpu_check.sh
# builds cuda_tests and ompq_bench (in $BUILD_DIR, default build/, when it is configured with CUDA;
# else in build-gpu/, configured with -DOMPQ_CUDA=ON), bundles them with
# ../shared/tools/device-bundle.sh into .device/ (then gzipped to .device/bundle.tgz to fit the
# carry limit), and prints the command to run there.
#
# There (the GPU machine, repository root, .device carried):
#   bash scripts/gpu_check.sh --run RESULTS_DIR
# runs
#   1. the `gpu` tests: the cuda_tests binary, which is exactly the tests ctest labels `gpu`
#      (ctest itself cannot run there: its files hold this machine's absolute paths);
#   2. the GPU benchmarks: ompq_bench --benchmark_filter=$OMPQ_GPU_BENCH_FILTER (default: the
#      packed low-bit families, BM_Gemm and every family named Cuda/Gpu/Cudnn; add BM_TrainStep|BM_Infer
#      once they run on the GPU) at --batch=$OMPQ_GPU_BATCH (default 64), JSON output;
#   3. scripts/bench_torch_gpu.py (PyTorch: ResNet-18/50, MobileNetV2, train and inference, bf16
#      autocast, channels_last, cudnn.benchmark);
# and writes RESULTS_DIR/summary.txt: tests passed/failed/skipped (with the failures' names),
# every benchmark's time and rate with its ratio to its peer (packed WbA8 against W8A8 of the same
# shape; BM_TrainStep/BM_Infer against PyTorch's same case when ompq ran them), and the PyTorch
# numbers. The raw outputs (gtest.json, bench.json, torch.json, log.txt) lie beside it.
# A step that fails is recorded in the summary and the others still run; the exit status is
# non-zero when a test failed or a step broke.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--run" ]; then
  set -e
  build=${BUILD_DIR:-build}
  if ! ninja -C "$build" -t query cuda_tests > /dev/null 2>&1; then  # not configured with CUDA
    build=build-gpu
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOMPQ_CUDA=ON
  fi
  ninja -C "$build" -j "${JOBS:-2}" cuda_tests ompq_bench
  mkdir -p "$(git rev-parse --git-path info)"  # the bundler records .device/ in info/exclude
  ../shared/tools/device-bundle.sh "$build" "$build/tests/cuda_tests" "$build/apps/ompq_bench"
  # The carry limit is 64 MiB: symbols go, and the bundle travels gzipped (oneDNN and the two
  # binaries' sm_90 cubins are ~80 MiB as files, ~23 MiB packed); --run unpacks it there.
  strip .device/bin/* 2>/dev/null || true
  tar -C .device -czf .device/bundle.tgz bin lib env.sh
  rm -rf .device/bin .device/lib .device/env.sh
  echo "bundle: .device/bundle.tgz, $(du -sm .device/bundle.tgz | cut -f1) MiB"
  echo
  echo "On the GPU machine (device tool: run, carry [\".device\"], timeout_s 600):"
  echo '  bash scripts/gpu_check.sh --run "$OUT"'
  exit 0
fi

results=${2:?usage: scripts/gpu_check.sh --run RESULTS_DIR}
mkdir -p "$results"
log="$results/log.txt"
: > "$log"
broken=()
[ -f .device/env.sh ] || tar -C .device -xzf .device/bundle.tgz
# shellcheck disable=SC1091
source .device/env.sh
{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } \
  >> "$log" 2>&1 || broken+=("nvidia-smi")

echo "== gpu tests" | tee -a "$log"
timeout 300 cuda_tests --gtest_output="json:$results/gtest.json" >> "$log" 2>&1 ||
  broken+=("cuda_tests (exit $?)")

echo "== gpu benchmarks" | tee -a "$log"
filter=${OMPQ_GPU_BENCH_FILTER:-BM_Packed|BM_Gemm|Cuda|Gpu|GPU|Cudnn|CuDNN}
batch=${OMPQ_GPU_BATCH:-64}  # ompq's model benchmarks and PyTorch's, when both run
timeout 240 ompq_bench "--batch=$batch" "--benchmark_filter=$filter" \
  --benchmark_out="$results/bench.json" \
  --benchmark_out_format=json >> "$log" 2>&1 || broken+=("ompq_bench (exit $?)")

echo "== pytorch" | tee -a "$log"
PYTHONUNBUFFERED=1 timeout 240 python3 scripts/bench_torch_gpu.py --batch "$batch" \
  --json "$results/torch.json" \
  >> "$log" 2>&1 || broken+=("bench_torch_gpu.py (exit $?)")

printf '%s\n' "${broken[@]+"${broken[@]}"}" > "$results/.broken"
python3 - "$results" <<'PY'
import json, os, re, sys

results = sys.argv[1]
lines = []
broken = [b for b in open(os.path.join(results, ".broken")).read().splitlines() if b]
os.remove(os.path.join(results, ".broken"))


def load(name):
    path = os.path.join(results, name)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        lines.append(f"{name}: not readable ({e})")
        return None


lines.append("# GPU check summary")
try:
    lines.append(open(os.path.join(results, "log.txt")).read().split("== gpu tests")[0].strip())
except OSError:
    pass

tests = load("gtest.json")
failed_tests = 0
if tests:
    passed = skipped = 0
    failures = []
    for suite in tests.get("testsuites", []):
        for case in suite.get("testsuite", []):
            name = f"{suite['name']}.{case['name']}"
            if case.get("result") == "SKIPPED" or case.get("status") == "NOTRUN":
                skipped += 1
            elif case.get("failures"):
                failures.append(name)
            else:
                passed += 1
    failed_tests = len(failures)
    lines.append(f"\n## gpu tests: {passed} passed, {failed_tests} failed, {skipped} skipped")
    lines += [f"FAILED {name}" for name in failures]

bench = load("bench.json")
rows = {}
if bench:
    for b in bench.get("benchmarks", []):
        if b.get("run_type") == "aggregate":
            continue
        rows[b["name"].replace("/manual_time", "").replace("/real_time", "")] = b
torch = load("torch.json")
torch_rows = {b["name"]: b for b in (torch or {}).get("benchmarks", [])}


def peer_of(name):
    """(peer name, what the ratio means) for an ompq benchmark, or None."""
    m = re.match(r"(BM_Packed\w+)/W(\d)A8/(.*)", name)
    if m and m.group(2) != "8":
        return f"{m.group(1)}/W8A8/{m.group(3)}", "speedup over our W8A8"
    m = re.match(r"BM_(TrainStep|Infer)/(\w+)/(\d+)/(\d+)", name)
    if m:
        mode = "train" if m.group(1) == "TrainStep" else "infer"
        return f"torch:{mode}/{m.group(2)}/{m.group(3)}/{m.group(4)}", "ompq/PyTorch img/s"
    return None


if rows:
    lines.append("\n## ompq GPU benchmarks (time per launch; counters; ratio to peer)")
    for name, b in rows.items():
        if b.get("error_occurred"):
            lines.append(f"{name}: ERROR {b.get('error_message')}")
            continue
        counters = {k: b[k] for k in ("TOPS", "GBps", "roofline", "items_per_second") if k in b}
        text = f"{name}: {b['real_time']:.2f} {b.get('time_unit', 'ns')}"
        text += "".join(f" {k}={v:.4g}" for k, v in counters.items())
        peer = peer_of(name)
        if peer:
            peer_name, meaning = peer
            if peer_name.startswith("torch:"):
                other = torch_rows.get(peer_name[len("torch:"):])
                if other and "items_per_second" in b:
                    text += f" | {b['items_per_second'] / other['images_per_second']:.3f}x {meaning}"
            elif peer_name in rows and not rows[peer_name].get("error_occurred"):
                text += f" | {rows[peer_name]['real_time'] / b['real_time']:.3f}x {meaning}"
        lines.append(text)

if torch_rows:
    dev = (torch or {}).get("context", {})
    lines.append(f"\n## PyTorch {dev.get('torch', '')} on {dev.get('device', '')} "
                 f"(bf16 autocast, channels_last, cudnn.benchmark)")
    for name, b in torch_rows.items():
        ours = rows.get("BM_TrainStep/" + name.split("/", 1)[1]) if name.startswith("train/") else \
            rows.get("BM_Infer/" + name.split("/", 1)[1])
        peer = f" | ompq {ours['items_per_second']:.1f} img/s" if ours else " | no ompq GPU run"
        lines.append(f"{name}: {b['images_per_second']:.1f} img/s{peer}")

lines.append("\n## steps that broke: " + (", ".join(broken) if broken else "none"))
text = "\n".join(lines) + "\n"
open(os.path.join(results, "summary.txt"), "w").write(text)
print(text)
sys.exit(1 if broken or failed_tests else 0)
PY
