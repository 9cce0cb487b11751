// What every GPU benchmark of ompq_bench shares (bench_cuda.cc, bench_lowbit.cc and the GPU
// model cases of ompq_bench.cc): the roofline constants, waiting for the device, and timing a run
// of launches. Header-only and free of cuda/, so that it compiles in builds without CUDA.
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>

#include "core/tensor.h"

namespace ompq {

// The dense peaks of one H100 SXM (the GPU the targets in DESIGN.md name); on another GPU (an
// H200 has the same compute and 4.8 TB/s) the fractions are against these, not that GPU's own.
struct GpuPeaks {
  static constexpr double kBf16Flops = 989e12;
  static constexpr double kTf32Flops = 494e12;
  static constexpr double kFp32Flops = 67e12;
  static constexpr double kInt8Ops = 1979e12;
  static constexpr double kHbmBytesPerSecond = 3.35e12;
};

// Returns when every kernel queued on t's GPU before this call has finished (nothing to wait for
// on the CPU): one element of t is copied to the host on the device's stream, behind them (every
// ompq kernel of a device runs on that one stream, cuda/runtime.h).
inline void wait_for_device(const Tensor& t) {
  if (t.device().is_cuda()) {
    benchmark::DoNotOptimize(t.detach().reshape({-1}).slice(0, 0, 1).to(Device::cpu()).data_ptr());
  }
}

// Per-launch time of `launch` (returning a tensor on the device): one untimed launch (plans,
// algorithm choice, first allocations), then per benchmark iteration a run of kLaunchesPerRun
// launches ended by waiting for the device, timed on the host. Register with UseManualTime().
template <typename Launch>
void time_gpu_launches(benchmark::State& state, const Launch& launch) {
  constexpr int kLaunchesPerRun = 10;
  wait_for_device(launch());
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    Tensor out;
    for (int i = 0; i < kLaunchesPerRun; ++i) out = launch();
    wait_for_device(out);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    state.SetIterationTime(elapsed.count() / kLaunchesPerRun);
  }
}

// Counter `name` = per_launch / scale per second of measured time (e.g. FLOP per launch with scale
// 1e12 gives TFLOPS; bytes per launch with scale = the HBM bandwidth gives its fraction).
inline void set_gpu_rate(benchmark::State& state, const char* name, double per_launch,
                         double scale) {
  state.counters[name] =
      benchmark::Counter(per_launch / scale, benchmark::Counter::kIsIterationInvariantRate);
}

// The linear layers of BM_Gemm (cuBLASLt bf16 and int8) and BM_PackedLinear (W4A8, W8A8), so that
// each packed case has both vendor peers: {K, N} = ResNet-50's classifier, a square projection,
// a 3x3 convolution of 512 channels as a GEMM (K = 9 * 512), and a weight far larger than the
// 50 MB L2 (an LLM MLP projection: memory-bound at small M, where the packed widths must pay);
// at M = batch 1..256.
inline constexpr int64_t kGpuLinearShapes[][2] = {
    {2048, 1000}, {4096, 4096}, {4608, 512}, {8192, 28672}};
inline constexpr int64_t kGpuLinearBatches[] = {1, 4, 16, 64, 256};

// Benchmark iterations of a GPU case: each is kLaunchesPerRun launches. A fixed count (no
// min-time search, which would repeat the setup) keeps scripts/gpu_check.sh's run predictable.
constexpr int64_t kGpuBenchIterations = 20;

}  // namespace ompq
