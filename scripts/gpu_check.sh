#!/usr/bin/env bash
# Everything a GPU session must gather, in one command on the GPU machine.
#
# Here (the dev machine, with the CUDA toolkit):
#   scripts/gpu_check.sh
# builds cuda_tests, ompq_bench and ompq_search (in $BUILD_DIR, default build/, when it is
# configured with CUDA; else in build-gpu/, configured with -DOMPQ_CUDA=ON), bundles them with
# ../shared/tools/device-bundle.sh into .device/ (then gzipped to .device/bundle.tgz to fit the
# carry limit), and prints the command to run there.
#
# There (the GPU machine, repository root, .device carried):
#   bash scripts/gpu_check.sh --run RESULTS_DIR
# runs, each step under its own timeout so that the whole run stays under 9 minutes (the device
# tool allows 10 per command):
#   1. the `gpu` tests: the cuda_tests binary, which is exactly the tests ctest labels `gpu`
#      (ctest itself cannot run there: its files hold this machine's absolute paths)      <= 150 s;
#   2. the whole-model GPU benchmarks: ompq_bench --benchmark_filter=$OMPQ_GPU_MODEL_FILTER
#      (default: BM_TrainStep and BM_Infer on cuda, 8 cases of 3 + 20 or 30 steps) at
#      --batch=$OMPQ_GPU_BATCH (default 64) -> bench_models.json                            <= 80 s;
#   3. the GPU kernel benchmarks but cuDNN's, $OMPQ_GPU_BENCH_FILTER (default: the packed low-bit
#      families, 88 cases; BM_Gemm, 40; BM_CudaFakeQuant and BM_CudaBatchNorm, 24)
#      -> bench.json                                                                         <= 70 s;
#   4. scripts/bench_torch_gpu.py (PyTorch: ResNet-20/18/50, MobileNetV2, train and inference,
#      bf16 autocast, channels_last, cudnn.benchmark) -> torch.json                       <= 100 s;
#   5. ompq_search on cuda:0: ResNet-18, 224 px, 32 generated JPEGs -> search.txt        <= 45 s;
#   6. the cuDNN convolutions, $OMPQ_GPU_CUDNN_FILTER (default BM_CudnnConv: 59 layers x batch
#      32 and 256 x fwd and fwd+bwd, 236 cases) -> bench_cudnn.json                        <= 75 s;
# every GPU benchmark case runs a fixed 20 x 10 launches after one untimed launch (no min-time
# search, which would repeat its setup). scripts/gpu_summary.py then writes RESULTS_DIR/summary.txt:
# tests passed/failed/skipped (with the failures' names), every benchmark's time, counters and
# ratios to its peers (packed WbA8 against W8A8 and cuBLASLt int8/bf16 or cuDNN of the same shape;
# BM_TrainStep/BM_Infer against PyTorch's same case), the PyTorch numbers, the search's phase
# times, and each DESIGN.md target met or missed. The raw outputs (gtest.json, bench*.json,
# torch.json, search.txt, log.txt) lie beside it. A step that fails or times out is recorded in the
# summary and the others still run (a benchmark file cut short keeps its completed cases); the
# exit status is non-zero when a test failed or a step broke.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--run" ]; then
  set -e
  build=${BUILD_DIR:-build}
  if ! ninja -C "$build" -t query cuda_tests > /dev/null 2>&1; then  # not configured with CUDA
    build=build-gpu
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOMPQ_CUDA=ON
  fi
  ninja -C "$build" -j "${JOBS:-2}" cuda_tests ompq_bench ompq_search
  mkdir -p "$(git rev-parse --git-path info)"  # the bundler records .device/ in info/exclude
  ../shared/tools/device-bundle.sh "$build" "$build/tests/cuda_tests" "$build/apps/ompq_bench" \
    "$build/apps/ompq_search"
  # The carry limit is 64 MiB: symbols go, and the bundle travels gzipped (oneDNN and the
  # binaries' sm_90 cubins are several times larger as files than packed); --run unpacks it there.
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
results=$(cd "$results" && pwd)
log="$results/log.txt"
: > "$log"
broken=()
[ -f .device/env.sh ] || tar -C .device -xzf .device/bundle.tgz
# shellcheck disable=SC1091
source .device/env.sh
{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } \
  >> "$log" 2>&1 || broken+=("nvidia-smi")

# step NAME SECONDS COMMAND...: runs COMMAND with its output in the log, under a timeout.
step() {
  local name=$1 seconds=$2 status=0
  shift 2
  echo "== $name (at most ${seconds} s)" | tee -a "$log"
  local start=$SECONDS
  timeout "$seconds" "$@" >> "$log" 2>&1 || status=$?
  echo "== $name: exit $status after $((SECONDS - start)) s" | tee -a "$log"
  if [ "$status" = 124 ]; then
    broken+=("$name (timed out after $seconds s)")
  elif [ "$status" != 0 ]; then
    broken+=("$name (exit $status)")
  fi
}

batch=${OMPQ_GPU_BATCH:-64}  # ompq's model benchmarks and PyTorch's
# By its full path: gtest's death tests re-execute argv[0].
step "gpu tests" 150 "$(command -v cuda_tests)" --gtest_output="json:$results/gtest.json"
step "ompq_bench models" 80 ompq_bench "--batch=$batch" \
  "--benchmark_filter=${OMPQ_GPU_MODEL_FILTER:-BM_(TrainStep|Infer)/cuda/}" \
  --benchmark_out="$results/bench_models.json" --benchmark_out_format=json
step "ompq_bench kernels" 70 ompq_bench \
  "--benchmark_filter=${OMPQ_GPU_BENCH_FILTER:-BM_Packed|BM_Gemm/|BM_Cuda}" \
  --benchmark_out="$results/bench.json" --benchmark_out_format=json
step "pytorch" 100 env PYTHONUNBUFFERED=1 python3 scripts/bench_torch_gpu.py --batch "$batch" \
  --json "$results/torch.json"

# The search reads an ImageNet folder: ompq_bench's 16 generated 500x375 JPEGs (BM_Decode's)
# written into two class folders; --benchmark_list_tests runs no benchmark.
images=$(mktemp -d)
for class in n0 n1; do
  OMPQ_DECODE_BENCH_DIR="$images/train/$class" ompq_bench --benchmark_list_tests \
    --benchmark_filter=BM_Decode > /dev/null 2>> "$log" || broken+=("search images ($class)")
done
step "ompq_search" 45 bash -c 'set -o pipefail; ompq_search --model=resnet18 --quant=qat \
  --budget_mb=6.7 --beta=10 --num_images=32 --device=cuda:0 --data="$1" 2>&1 | tee "$2"' \
  bash "$images" "$results/search.txt"
rm -rf "$images"

step "ompq_bench cudnn" 75 ompq_bench "--benchmark_filter=${OMPQ_GPU_CUDNN_FILTER:-BM_CudnnConv/}" \
  --benchmark_out="$results/bench_cudnn.json" --benchmark_out_format=json

python3 scripts/gpu_summary.py "$results" "${broken[@]+"${broken[@]}"}"
