#include "apps/bench_lowbit.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "core/ops/integer.h"
#include "core/ops/pack.h"
#include "core/random.h"
#include "runtime/init.h"

namespace ompq {
namespace {

constexpr double kHbmBytesPerSecond = 3.35e12;  // H100 SXM HBM3
constexpr double kInt8OpsPerSecond = 1979e12;   // H100 SXM dense int8 tensor cores
constexpr int kLaunchesPerSync = 10;

// A GPU layer of random codes: signed `bits`-bit weights packed per output row, int8 activations
// with zero point 0, requantized to int8 with a per-channel multiplier.
struct GpuLayer {
  Tensor x;
  PackedWeight w;
  Requantization requant;
};

Tensor random_codes(const Shape& shape, int64_t lo, int64_t hi, uint64_t seed) {
  Generator gen(seed);
  Tensor t = Tensor::empty(shape, DType::kF32);
  ops::uniform_(t, static_cast<double>(lo), static_cast<double>(hi) + 0.999, gen);
  return t.to(DType::kI32);  // truncation: values in [lo, hi] (0 twice as likely when lo < 0)
}

// The packed weights of one shape and width, made once for all batch sizes (the largest take
// seconds to draw and pack on the host).
const Tensor& packed_weight(const Shape& w_shape, int bits) {
  static std::map<std::tuple<Shape, int>, Tensor> cache;
  Tensor& packed = cache[{w_shape, bits}];
  if (!packed.defined()) {
    const int64_t qmin = -(int64_t{1} << (bits - 1));
    packed = ops::pack_codes(random_codes(w_shape, qmin, -qmin - 1, 2), bits, qmin)
                 .to(Device::cuda());
  }
  return packed;
}

GpuLayer make_layer(const Shape& x_shape, const Shape& w_shape, int bits) {
  GpuLayer l;
  l.x = random_codes(x_shape, -128, 127, 1).to(DType::kI8).to(Device::cuda());
  l.w.packed = packed_weight(w_shape, bits);
  l.w.shape = w_shape;
  l.w.bits = bits;
  l.w.qmin = -(int64_t{1} << (bits - 1));
  l.requant.multiplier = Tensor::full({w_shape[0]}, 1e-4, DType::kF32, Device::cuda());
  l.requant.range = {-128, 127};
  return l;
}

// Times `launch` (returning its output) per launch: runs of kLaunchesPerSync launches, each run
// ended by copying one output element to the host, which waits for the GPU.
template <typename Launch>
void time_launches(benchmark::State& state, const Launch& launch, double ops, double bytes) {
  launch().view({-1}).slice(0, 0, 1).to(Device::cpu());  // warm-up: allocations, first launch
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    Tensor out;
    for (int r = 0; r < kLaunchesPerSync; ++r) out = launch();
    out.view({-1}).slice(0, 0, 1).to(Device::cpu());
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    state.SetIterationTime(elapsed.count() / kLaunchesPerSync);
  }
  using benchmark::Counter;
  state.counters["TOPS"] = Counter(ops * 1e-12, Counter::kIsIterationInvariantRate);
  state.counters["GBps"] = Counter(bytes * 1e-9, Counter::kIsIterationInvariantRate);
  // roofline = (roofline time per launch) / (measured time per launch), as an inverse-time rate.
  const double roofline_seconds = std::max(bytes / kHbmBytesPerSecond, ops / kInt8OpsPerSecond);
  state.counters["roofline"] = Counter(roofline_seconds, Counter::kIsIterationInvariantRate);
}

double packed_bytes(const PackedWeight& w) { return static_cast<double>(w.packed.numel()); }

void packed_linear_bench(benchmark::State& state, int64_t m, int64_t k, int64_t o, int bits) {
  const GpuLayer l = make_layer({m, k}, {o, k}, bits);
  const double ops = 2.0 * static_cast<double>(m) * k * o;
  const double bytes = packed_bytes(l.w) + static_cast<double>(m) * k + static_cast<double>(m) * o;
  time_launches(state, [&] { return ops::packed_linear(l.x, 0, l.w, l.requant); }, ops, bytes);
}

struct ConvShape {
  int64_t channels, height, out_channels, kernel, stride, padding, groups;
};

void packed_conv_bench(benchmark::State& state, int64_t batch, ConvShape s, int bits) {
  const GpuLayer l = make_layer({batch, s.channels, s.height, s.height},
                                {s.out_channels, s.channels / s.groups, s.kernel, s.kernel}, bits);
  Conv2dParams p;
  p.stride = {s.stride, s.stride};
  p.padding = {s.padding, s.padding};
  p.groups = s.groups;
  const int64_t out = (s.height + 2 * s.padding - s.kernel) / s.stride + 1;
  const double ops = 2.0 * batch * s.out_channels * (s.channels / s.groups) * s.kernel * s.kernel *
                     out * out;
  const double bytes = packed_bytes(l.w) + static_cast<double>(l.x.numel()) +
                       static_cast<double>(batch * s.out_channels * out * out);
  time_launches(state, [&] { return ops::packed_conv2d(l.x, 0, l.w, p, l.requant); }, ops, bytes);
}

}  // namespace

void register_lowbit_benchmarks() {
  if (!cuda_available()) return;
  // ResNet-50's classifier, and a weight too large for the 50 MB L2 (an LLM MLP projection), the
  // memory-bound case the W4A8 >= 1.5x W8A8 and 80%-of-HBM targets are about.
  const int64_t linear_shapes[][2] = {{2048, 1000}, {8192, 28672}};
  // ResNet-18's 3x3 stage convolutions, a 1x1 downsample and a MobileNetV2 depthwise layer.
  const ConvShape conv_shapes[] = {{64, 56, 64, 3, 1, 1, 1},    {128, 28, 128, 3, 1, 1, 1},
                                   {256, 14, 256, 3, 1, 1, 1},  {512, 7, 512, 3, 1, 1, 1},
                                   {256, 14, 512, 1, 2, 0, 1},  {144, 56, 144, 3, 2, 1, 144}};
  for (int bits : {4, 8}) {
    const std::string precision = absl::StrCat("W", bits, "A8");
    for (const auto& s : linear_shapes) {
      for (int64_t m : {1, 16, 64, 256}) {
        benchmark::RegisterBenchmark(
            absl::StrCat("BM_PackedLinear/", precision, "/M", m, "_K", s[0], "_O", s[1]).c_str(),
            packed_linear_bench, m, s[0], s[1], bits)
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
    for (const ConvShape& s : conv_shapes) {
      for (int64_t batch : {1, 16, 256}) {
        benchmark::RegisterBenchmark(
            absl::StrCat("BM_PackedConv2d/", precision, "/N", batch, "_C", s.channels, "_H",
                         s.height, "_O", s.out_channels, "_K", s.kernel, "_S", s.stride, "_P",
                         s.padding, "_G", s.groups)
                .c_str(),
            packed_conv_bench, batch, s, bits)
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
}

}  // namespace ompq
