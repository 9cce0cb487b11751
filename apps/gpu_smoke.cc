// gpu_smoke: the first seconds on a GPU machine. Prints the GPU, the driver and the CUDA, cuDNN
// and cuBLASLt versions this build runs with, then runs one of ompq's kernels, one cuDNN
// convolution and one cuBLASLt GEMM on GPU 0 and compares each with the CPU. Every check prints
// one line, "ok" or "FAIL" with the reason, so a wrong bundle or library shows at once.
// Exit status: 0 when every check passed, 1 when one failed, 2 when no GPU is usable.
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "core/functional/conv.h"
#include "core/functional/elementwise.h"
#include "core/functional/linalg.h"
#include "core/random.h"
#include "core/tensor.h"
#include "cuda/arch.h"
#include "runtime/init.h"

namespace ompq {
namespace {

constexpr int kNoGpu = 2;

// "12.8" for CUDA's 12080.
std::string cuda_version(int version) {
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

// "9.19.0" for cuDNN's and cuBLASLt's 91900 (major * 10000 + minor * 100 + patch).
std::string library_version(size_t version) {
  return std::to_string(version / 10000) + "." + std::to_string(version % 10000 / 100) + "." +
         std::to_string(version % 100);
}

Tensor random_input(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  Tensor t = Tensor::empty(shape, DType::kF32);
  ops::uniform_(t, -1.0, 1.0, gen);
  return t;
}

// The largest |gpu - cpu| over max|cpu| (both read back as double).
double relative_error(const Tensor& cpu, const Tensor& gpu) {
  const std::vector<double> expected = cpu.to_vector<double>();
  const std::vector<double> actual = gpu.to_vector<double>();
  if (expected.size() != actual.size()) return INFINITY;
  double diff = 0, scale = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    diff = std::max(diff, std::abs(expected[i] - actual[i]));
    scale = std::max(scale, std::abs(expected[i]));
  }
  return scale > 0 ? diff / scale : diff;
}

// Runs `check` (which returns its relative error against the CPU), prints one line and returns
// whether it passed: an exception or an error above `tolerance` fails it.
bool run_check(const char* what, double tolerance, const std::function<double()>& check) {
  const auto start = std::chrono::steady_clock::now();
  try {
    const double error = check();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    const bool ok = error <= tolerance;
    std::printf("gpu_smoke: %s %s: relative error %.3g (at most %.3g), %.0f ms\n",
                ok ? "ok  " : "FAIL", what, error, tolerance, ms);
    return ok;
  } catch (const std::exception& e) {
    std::printf("gpu_smoke: FAIL %s: %s\n", what, e.what());
    return false;
  }
}

int run() {
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);  // 0 without a driver
  cudaRuntimeGetVersion(&runtime);
  std::printf(
      "gpu_smoke: driver supports CUDA %s, runtime %s, cuDNN %s (built with %s), "
      "cuBLASLt %s, kernels for %s\n",
      driver > 0 ? cuda_version(driver).c_str() : "(no driver)", cuda_version(runtime).c_str(),
      library_version(cudnnGetVersion()).c_str(), library_version(CUDNN_VERSION).c_str(),
      library_version(cublasLtGetVersion()).c_str(), cuda::compiled_arch_names().c_str());
  const RuntimeInfo& info = init();
  if (info.cuda_device_count == 0) {
    std::printf("gpu_smoke: FAIL no usable GPU: %s\n", info.cuda_status.c_str());
    return kNoGpu;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
    std::printf("gpu_smoke: GPU 0 of %d: %s, compute capability %d.%d, %d SMs, %.1f GiB\n",
                info.cuda_device_count, prop.name, prop.major, prop.minor, prop.multiProcessorCount,
                prop.totalGlobalMem / double(1 << 30));
  }
  const Device gpu = Device::cuda(0);
  bool ok = true;
  // One element per thread of several blocks: f32 addition rounds alike on both devices.
  ok &= run_check("ompq kernel (add, 1M elements)", 0.0, [&] {
    const Tensor a = random_input({1 << 20}, 1), b = random_input({1 << 20}, 2);
    return relative_error(add(a, b), add(a.to(gpu), b.to(gpu)));
  });
  // f32 without TF32: cuDNN and oneDNN differ by their summation orders only.
  ok &= run_check("cuDNN convolution (f32, 8x64x28x28, 3x3, 64 out)", 1e-5, [&] {
    const Tensor x = random_input({8, 64, 28, 28}, 3), w = random_input({64, 64, 3, 3}, 4);
    const Tensor bias = random_input({64}, 5);
    Conv2dParams p;
    p.padding = {1, 1};
    return relative_error(conv2d(x, w, bias, p), conv2d(x.to(gpu), w.to(gpu), bias.to(gpu), p));
  });
  ok &= run_check("cuBLASLt GEMM (f32, 256x512 x 512x128)", 1e-5, [&] {
    const Tensor a = random_input({256, 512}, 6), b = random_input({512, 128}, 7);
    return relative_error(matmul(a, b), matmul(a.to(gpu), b.to(gpu)));
  });
  std::printf("gpu_smoke: %s\n", ok ? "every check passed" : "a check FAILED");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace ompq

int main() {
  try {
    return ompq::run();
  } catch (const std::exception& e) {
    std::printf("gpu_smoke: FAIL %s\n", e.what());
    return 1;
  }
}
