#include "apps/bench_cuda.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/ops/conv.h"
#include "core/random.h"
#include "cuda/cublaslt_gemm.h"
#include "cuda/runtime.h"
#include "runtime/init.h"

namespace ompq {
namespace {

constexpr int kLaunchesPerSync = 10;

// Per-launch time of `launch` (called kLaunchesPerSync times, then the device drained).
template <typename Launch>
void time_launches(benchmark::State& state, const Launch& launch) {
  launch();  // untimed: plan creation, algorithm choice, first allocations
  cuda::synchronize(0);
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kLaunchesPerSync; ++i) launch();
    cuda::synchronize(0);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    state.SetIterationTime(elapsed.count() / kLaunchesPerSync);
  }
}

void set_rate(benchmark::State& state, const char* name, double per_launch, double scale) {
  state.counters[name] = benchmark::Counter(per_launch * state.iterations() / scale,
                                            benchmark::Counter::kIsRate);
}

// One convolution layer at 224x224 input resolution (square inputs and kernels).
struct ConvLayer {
  int64_t channels, height, out_channels, kernel, stride, padding, groups;
  int64_t out_height() const { return (height + 2 * padding - kernel) / stride + 1; }
  bool operator==(const ConvLayer& o) const {
    return channels == o.channels && height == o.height && out_channels == o.out_channels &&
           kernel == o.kernel && stride == o.stride && padding == o.padding && groups == o.groups;
  }
};

void add_layer(std::vector<ConvLayer>* layers, const ConvLayer& l) {
  if (std::find(layers->begin(), layers->end(), l) == layers->end()) layers->push_back(l);
}

// torchvision's ResNet (v1.5: the stride sits on the 3x3 convolution of a bottleneck).
void add_resnet(std::vector<ConvLayer>* layers, bool bottleneck, const int (&blocks)[4]) {
  add_layer(layers, {3, 224, 64, 7, 2, 3, 1});
  int64_t in = 64, h = 56;  // after the stem and the 3x3/2 max pool
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t width = int64_t{64} << stage, out = bottleneck ? 4 * width : width;
    for (int b = 0; b < blocks[stage]; ++b) {
      const int64_t s = b == 0 && stage > 0 ? 2 : 1, h_out = (h - 1) / s + 1;
      if (bottleneck) {
        add_layer(layers, {in, h, width, 1, 1, 0, 1});
        add_layer(layers, {width, h, width, 3, s, 1, 1});
        add_layer(layers, {width, h_out, out, 1, 1, 0, 1});
      } else {
        add_layer(layers, {in, h, out, 3, s, 1, 1});
        add_layer(layers, {out, h_out, out, 3, 1, 1, 1});
      }
      if (b == 0 && (s != 1 || in != out)) add_layer(layers, {in, h, out, 1, s, 0, 1});
      in = out;
      h = h_out;
    }
  }
}

// torchvision's MobileNetV2: inverted residuals (expand 1x1, depthwise 3x3, project 1x1).
void add_mobilenet_v2(std::vector<ConvLayer>* layers) {
  add_layer(layers, {3, 224, 32, 3, 2, 1, 1});
  const int settings[][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2},  {6, 64, 4, 2},
                             {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};  // t, c, n, s
  int64_t in = 32, h = 112;
  for (const auto& [expand, out, repeats, stride] : settings) {
    for (int i = 0; i < repeats; ++i) {
      const int64_t s = i == 0 ? stride : 1, hidden = in * expand, h_out = (h - 1) / s + 1;
      if (expand != 1) add_layer(layers, {in, h, hidden, 1, 1, 0, 1});
      add_layer(layers, {hidden, h, hidden, 3, s, 1, hidden});
      add_layer(layers, {hidden, h_out, out, 1, 1, 0, 1});
      in = out;
      h = h_out;
    }
  }
  add_layer(layers, {320, 7, 1280, 1, 1, 0, 1});
}

std::vector<ConvLayer> model_conv_layers() {
  std::vector<ConvLayer> layers;
  add_resnet(&layers, /*bottleneck=*/false, {2, 2, 2, 2});  // ResNet-18
  add_resnet(&layers, /*bottleneck=*/true, {3, 4, 6, 3});   // ResNet-50
  add_mobilenet_v2(&layers);
  return layers;
}

// bf16, channels_last: the layout and precision of PyTorch's AMP training with channels_last.
Tensor gpu_bf16(const Shape& shape, bool channels_last, uint64_t seed) {
  Generator gen(seed);
  Tensor t = randn(shape, gen).to(DType::kBF16).to(Device::cuda());
  return channels_last ? t.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2}) : t;
}

void conv(benchmark::State& state, int64_t batch, ConvLayer l, bool with_backward) {
  Conv2dParams p;
  p.stride = {l.stride, l.stride};
  p.padding = {l.padding, l.padding};
  p.groups = l.groups;
  const Tensor x = gpu_bf16({batch, l.channels, l.height, l.height}, true, 1);
  const Tensor w = gpu_bf16({l.out_channels, l.channels / l.groups, l.kernel, l.kernel}, false, 2);
  const Tensor grad =
      gpu_bf16({batch, l.out_channels, l.out_height(), l.out_height()}, true, 3);
  time_launches(state, [&] {
    benchmark::DoNotOptimize(ops::conv2d(x, w, Tensor(), p).data_ptr());
    if (with_backward) ops::conv2d_backward(grad, x, w, {true, true, false}, p);
  });
  const double flops = 2.0 * batch * l.out_channels * (l.channels / l.groups) * l.kernel *
                       l.kernel * l.out_height() * l.out_height() * (with_backward ? 3 : 1);
  set_rate(state, "TFLOPS", flops, 1e12);
  set_rate(state, "peak_fraction", flops, GpuPeaks::kBf16Flops);
}

// out [M, N] = x [M, K] @ w^T with w a row-major [N, K] (linear's weight): bf16 -> bf16 or
// int8 -> int32.
void gemm(benchmark::State& state, bool int8, int64_t m, int64_t k, int64_t n) {
  const DType in = int8 ? DType::kI8 : DType::kBF16, out_dtype = int8 ? DType::kI32 : DType::kBF16;
  Generator gen(4);
  auto operand = [&](const Shape& shape) {
    Tensor t = Tensor::empty(shape, DType::kF32);
    ops::uniform_(t, int8 ? -127.0 : -1.0, int8 ? 127.0 : 1.0, gen);
    return t.to(in).to(Device::cuda());
  };
  const Tensor x = operand({1, m, k});
  const Tensor w_rows = operand({n, k});
  const Tensor w = as_strided(w_rows, {1, k, n}, {k * n, 1, k}, 0);
  const Tensor out = Tensor::empty({1, m, n}, out_dtype, Device::cuda());
  time_launches(state, [&] { cuda::cublaslt_matmul(out, x, w, Tensor()); });
  const double flops = 2.0 * m * k * n;
  const double bytes =
      static_cast<double>((m * k + k * n) * dtype_size(in) + m * n * dtype_size(out_dtype));
  set_rate(state, "TFLOPS", flops, 1e12);
  set_rate(state, "peak_fraction", flops, int8 ? GpuPeaks::kInt8Ops : GpuPeaks::kBf16Flops);
  set_rate(state, "GBps", bytes, 1e9);
  set_rate(state, "hbm_fraction", bytes, GpuPeaks::kHbmBytesPerSecond);
}

}  // namespace

void register_cuda_benchmarks() {
  if (!cuda_available()) return;
  for (int64_t batch : {32, 256}) {
    for (const ConvLayer& l : model_conv_layers()) {
      const std::string name =
          absl::StrCat("BM_CudnnConv/N", batch, "_C", l.channels, "_H", l.height, "_O",
                       l.out_channels, "_K", l.kernel, "_S", l.stride, "_P", l.padding, "_G",
                       l.groups, "_CL");
      for (bool with_backward : {false, true}) {
        benchmark::RegisterBenchmark((name + (with_backward ? "/fwdbwd" : "/fwd")).c_str(), conv,
                                     batch, l, with_backward)
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond)
            ->MinTime(0.2);
      }
    }
  }
  // ResNet-50's classifier, a square projection, and a 3x3 convolution of 512 channels as a GEMM.
  const int64_t shapes[][2] = {{2048, 1000}, {4096, 4096}, {4608, 512}};  // K, N
  for (bool int8 : {false, true}) {
    for (const auto& [k, n] : shapes) {
      for (int64_t m = 1; m <= 256; m *= 2) {
        benchmark::RegisterBenchmark(
            absl::StrCat("BM_Gemm/", int8 ? "int8" : "bf16", "/M", m, "_K", k, "_N", n).c_str(),
            gemm, int8, m, k, n)
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond)
            ->MinTime(0.1);
      }
    }
  }
}

}  // namespace ompq
