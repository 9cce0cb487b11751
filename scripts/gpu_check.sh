#!/usr/bin/env bash
# Everything a GPU session must gather, in one command on the GPU machine.
#
# Here (the dev machine, with the CUDA toolkit):
#   scripts/gpu_check.sh
# builds gpu_smoke, cuda_tests, ompq_bench and ompq_search (in $BUILD_DIR, default build/, when it
# is configured with CUDA; else in build-gpu/, configured with -DOMPQ_CUDA=ON), bundles them with
# scripts/gpu_bundle.sh into .device/ (then gzipped to .device/bundle.tgz to fit the carry limit),
# and prints the command to run there.
#
# There (the GPU machine, repository root, .device carried):
#   bash scripts/gpu_check.sh --run RESULTS_DIR
# runs these steps, each under its own timeout and all within $OMPQ_GPU_DEADLINE_S (default 470 s,
# under the 8 minutes a session gives it; a step that would start too late gets what is left, or
# is skipped when less than 5 s are):
#   1. gpu_smoke: the GPU, driver and library versions, one ompq kernel, one cuDNN convolution and
#      one cuBLASLt GEMM against the CPU -> smoke.txt                                      <= 30 s;
#      when it finds no usable GPU or a check fails, nothing else runs: the reason is in the
#      summary within seconds (a missing library: the loader's message and ldd's "not found");
#   2. the `gpu` tests: the cuda_tests binary, which is exactly the tests ctest labels `gpu`
#      (ctest itself cannot run there: its files hold this machine's absolute paths)      <= 120 s;
#   3. compute-sanitizer (the GPU machine's own: PATH, $CUDA_HOME/bin, /usr/local/cuda*/bin; the
#      steps are skipped, not failed, when there is none) over a short selection of the tests:
#      memcheck, $OMPQ_GPU_MEMCHECK_FILTER -> memcheck.txt                                  <= 45 s;
#      racecheck (the kernels with shared memory), $OMPQ_GPU_RACECHECK_FILTER -> racecheck.txt
#                                                                                          <= 35 s;
#   4. the whole-model GPU benchmarks: ompq_bench --benchmark_filter=$OMPQ_GPU_MODEL_FILTER
#      (default: BM_TrainStep and BM_Infer on cuda, 8 cases of 3 + 20 or 30 steps) at
#      --batch=$OMPQ_GPU_BATCH (default 64) -> bench_models.json                            <= 60 s;
#   5. the GPU kernel benchmarks but cuDNN's, $OMPQ_GPU_BENCH_FILTER (default: the packed low-bit
#      families, 88 cases; BM_Gemm, 40; BM_CudaFakeQuant and BM_CudaBatchNorm, 24)
#      -> bench.json                                                                         <= 50 s;
#   6. scripts/bench_torch_gpu.py (PyTorch: ResNet-20/18/50, MobileNetV2, train and inference,
#      bf16 autocast, channels_last, cudnn.benchmark) -> torch.json                        <= 60 s;
#   7. ompq_search on cuda:0: ResNet-18, 224 px, 32 generated JPEGs -> search.txt        <= 30 s;
#   8. the cuDNN convolutions, $OMPQ_GPU_CUDNN_FILTER (default BM_CudnnConv: 59 layers x batch
#      32 and 256 x fwd and fwd+bwd, 236 cases) -> bench_cudnn.json                        <= 40 s;
# every GPU benchmark case runs a fixed 20 x 10 launches after one untimed launch (no min-time
# search, which would repeat its setup). scripts/gpu_summary.py writes RESULTS_DIR/summary.txt at
# the start and again after every step, from steps.txt (each step's start, and its end, exit
# status and seconds), so that a run killed at any point leaves a summary of what it finished and
# names the step that was cut short. The summary holds: the smoke lines, tests passed/failed/
# skipped (with the failures' names), the sanitizers' error counts, every benchmark's time,
# counters and ratios to its peers (packed WbA8 against W8A8 and cuBLASLt int8/bf16 or cuDNN of
# the same shape; BM_TrainStep/BM_Infer against PyTorch's same case), the PyTorch numbers, the
# search's phase times, and each DESIGN.md target met or missed. The raw outputs (smoke.txt,
# gtest.json, memcheck.txt, racecheck.txt, bench*.json, torch.json, search.txt, log.txt) lie
# beside it. A step that fails or times out is recorded and the others still run (a benchmark
# file cut short keeps its completed cases); the exit status is non-zero when a test failed or a
# step broke.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--run" ]; then
  set -e
  build=${BUILD_DIR:-build}
  if ! ninja -C "$build" -t query cuda_tests > /dev/null 2>&1; then  # not configured with CUDA
    build=build-gpu
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOMPQ_CUDA=ON
  fi
  ninja -C "$build" -j "${JOBS:-2}" gpu_smoke cuda_tests ompq_bench ompq_search
  scripts/gpu_bundle.sh "$build/apps/gpu_smoke" "$build/tests/cuda_tests" \
    "$build/apps/ompq_bench" "$build/apps/ompq_search"
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
steps="$results/steps.txt"
deadline=$((SECONDS + ${OMPQ_GPU_DEADLINE_S:-470}))
: > "$log"
: > "$steps"
summarize() { python3 scripts/gpu_summary.py "$results" > /dev/null 2>> "$log"; }
summarize  # a run killed from here on still leaves a summary

[ -f .device/env.sh ] || tar -C .device -xzf .device/bundle.tgz
# shellcheck disable=SC1091
source .device/env.sh
{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } \
  >> "$log" 2>&1 || echo "nvidia-smi failed" >> "$log"

# step NAME SECONDS COMMAND...: runs COMMAND with its output in the log, under a timeout that
# also keeps the run within the deadline, recording its start and end in steps.txt and rewriting
# the summary after it. Returns COMMAND's exit status (124: timed out).
step() {
  local name=$1 seconds=$2 status=0
  shift 2
  local left=$((deadline - SECONDS))
  if [ "$left" -lt 5 ]; then
    printf 'out_of_time\t%s\n' "$name" >> "$steps"
    summarize
    return 125
  fi
  [ "$seconds" -le "$left" ] || seconds=$left
  printf 'start\t%s\t%s\n' "$name" "$seconds" >> "$steps"
  summarize  # names this step as cut short until it ends
  echo "== $name (at most ${seconds} s)" | tee -a "$log"
  local start=$SECONDS
  timeout "$seconds" "$@" >> "$log" 2>&1 || status=$?
  printf 'end\t%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - start))" >> "$steps"
  echo "== $name: exit $status after $((SECONDS - start)) s" | tee -a "$log"
  summarize
  return "$status"
}

# Nothing else is worth running when the smoke step fails: its lines say why.
smoke=0
step "smoke" 30 bash -c 'set -o pipefail; gpu_smoke 2>&1 | tee "$1"' bash "$results/smoke.txt" ||
  smoke=$?
if [ "$smoke" != 0 ]; then
  if ! smoke_path=$(command -v gpu_smoke); then
    echo "gpu_smoke: FAIL not in the bundle (.device/bin): rebuild it with scripts/gpu_check.sh" \
      >> "$results/smoke.txt"
  elif grep -q "error while loading shared libraries" "$results/smoke.txt"; then
    ldd "$smoke_path" 2>&1 | grep "not found" >> "$results/smoke.txt"
  fi
  python3 scripts/gpu_summary.py "$results"
  exit 1
fi

# By its full path: gtest's death tests re-execute argv[0].
tests=$(command -v cuda_tests)
step "gpu tests" 120 "$tests" --gtest_output="json:$results/gtest.json"

# The machine's own compute-sanitizer: it must match its driver.
sanitizer=$(command -v compute-sanitizer ||
  ls "${CUDA_HOME:-/usr/local/cuda}"/bin/compute-sanitizer /usr/local/cuda*/bin/compute-sanitizer \
    2> /dev/null | head -1)
if [ -n "$sanitizer" ]; then
  step "memcheck" 45 "$sanitizer" --tool memcheck --error-exitcode 1 --print-limit 20 \
    --log-file "$results/memcheck.txt" "$tests" \
    "--gtest_filter=${OMPQ_GPU_MEMCHECK_FILTER:-CudaElementwise.*:CudaReduce.*:CudaSoftmax.*:CudaBatchNorm.*:CudaPackedLinear.*}"
  step "racecheck" 35 "$sanitizer" --tool racecheck --error-exitcode 1 --print-limit 20 \
    --log-file "$results/racecheck.txt" "$tests" \
    "--gtest_filter=${OMPQ_GPU_RACECHECK_FILTER:-CudaReduce.*:CudaSoftmax.*:CudaBatchNorm.*:CudaQuant.*:CudaPackedLinear.*}"
else
  printf 'skipped\t%s\tno compute-sanitizer on this machine\n' memcheck racecheck >> "$steps"
fi

batch=${OMPQ_GPU_BATCH:-64}  # ompq's model benchmarks and PyTorch's
step "ompq_bench models" 60 ompq_bench "--batch=$batch" \
  "--benchmark_filter=${OMPQ_GPU_MODEL_FILTER:-BM_(TrainStep|Infer)/cuda/}" \
  --benchmark_out="$results/bench_models.json" --benchmark_out_format=json
step "ompq_bench kernels" 50 ompq_bench \
  "--benchmark_filter=${OMPQ_GPU_BENCH_FILTER:-BM_Packed|BM_Gemm/|BM_Cuda}" \
  --benchmark_out="$results/bench.json" --benchmark_out_format=json
step "pytorch" 60 env PYTHONUNBUFFERED=1 python3 scripts/bench_torch_gpu.py --batch "$batch" \
  --json "$results/torch.json"

# The search reads an ImageNet folder: ompq_bench's 16 generated 500x375 JPEGs (BM_Decode's)
# written into two class folders; --benchmark_list_tests runs no benchmark.
images=$(mktemp -d)
for class in n0 n1; do
  OMPQ_DECODE_BENCH_DIR="$images/train/$class" ompq_bench --benchmark_list_tests \
    --benchmark_filter=BM_Decode > /dev/null 2>> "$log" ||
    echo "search images ($class) could not be written" >> "$log"
done
step "ompq_search" 30 bash -c 'set -o pipefail; ompq_search --model=resnet18 --quant=qat \
  --budget_mb=6.7 --beta=10 --num_images=32 --device=cuda:0 --data="$1" 2>&1 | tee "$2"' \
  bash "$images" "$results/search.txt"
rm -rf "$images"

step "ompq_bench cudnn" 40 ompq_bench "--benchmark_filter=${OMPQ_GPU_CUDNN_FILTER:-BM_CudnnConv/}" \
  --benchmark_out="$results/bench_cudnn.json" --benchmark_out_format=json

python3 scripts/gpu_summary.py "$results"
