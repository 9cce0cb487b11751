#include "apps/bench_lowbit.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "apps/bench_gpu.h"
#include "core/ops/integer.h"
#include "core/random.h"
#include "runtime/init.h"

namespace ompq {
namespace {

// A GPU layer of random codes: signed `bits`-bit weights packed per output row, int8 activations
// with zero point 0, requantized to int8 with a per-channel multiplier.
struct GpuLayer {
  Tensor x;
  PackedWeight w;
  Requantization requant;
};

// Drawn on `device`: the activations on the GPU (batch 256 would take seconds on the host), the
// weights on the host, where they are packed.
Tensor random_codes(const Shape& shape, int64_t lo, int64_t hi, uint64_t seed, Device device) {
  Generator gen(seed);
  Tensor t = Tensor::empty(shape, DType::kF32, device);
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
    packed =
        ops::pack_weight_codes(random_codes(w_shape, qmin, -qmin - 1, 2, Device::cpu()), bits, qmin)
            .to(Device::cuda());
  }
  return packed;
}

GpuLayer make_layer(const Shape& x_shape, const Shape& w_shape, int bits) {
  GpuLayer l;
  l.x = random_codes(x_shape, -128, 127, 1, Device::cuda()).to(DType::kI8);
  l.w.packed = packed_weight(w_shape, bits);
  l.w.shape = w_shape;
  l.w.bits = bits;
  l.w.qmin = -(int64_t{1} << (bits - 1));
  l.requant.multiplier = Tensor::full({w_shape[0]}, 1e-4, DType::kF32, Device::cuda());
  l.requant.range = {-128, 127};
  return l;
}

// TOPS (2 ops per multiply-add), GBps, and roofline: the roofline time per launch (the larger of
// bytes / HBM bandwidth and ops / dense int8 peak) over the measured time per launch.
void set_lowbit_counters(benchmark::State& state, double ops, double bytes) {
  set_gpu_rate(state, "TOPS", ops, 1e12);
  set_gpu_rate(state, "GBps", bytes, 1e9);
  const double roofline_seconds =
      std::max(bytes / GpuPeaks::kHbmBytesPerSecond, ops / GpuPeaks::kInt8Ops);
  set_gpu_rate(state, "roofline", roofline_seconds, 1.0);
}

double packed_bytes(const PackedWeight& w) { return static_cast<double>(w.packed.numel()); }

void packed_linear_bench(benchmark::State& state, int64_t m, int64_t k, int64_t o, int bits) {
  const GpuLayer l = make_layer({m, k}, {o, k}, bits);
  const double ops = 2.0 * static_cast<double>(m) * k * o;
  const double bytes = packed_bytes(l.w) + static_cast<double>(m) * k + static_cast<double>(m) * o;
  time_gpu_launches(state, [&] { return ops::packed_linear(l.x, 0, l.w, l.requant); });
  set_lowbit_counters(state, ops, bytes);
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
  const double ops =
      2.0 * batch * s.out_channels * (s.channels / s.groups) * s.kernel * s.kernel * out * out;
  const double bytes = packed_bytes(l.w) + static_cast<double>(l.x.numel()) +
                       static_cast<double>(batch * s.out_channels * out * out);
  time_gpu_launches(state, [&] { return ops::packed_conv2d(l.x, 0, l.w, p, l.requant); });
  set_lowbit_counters(state, ops, bytes);
}

}  // namespace

void register_lowbit_benchmarks() {
  if (!cuda_available()) return;
  // ResNet-18's 3x3 stage convolutions and a 1x1 downsample, and three MobileNetV2 depthwise
  // layers; each is a BM_CudnnConv shape (bench_cuda.h), whose batches 32 and 256 are here too.
  const ConvShape conv_shapes[] = {{64, 56, 64, 3, 1, 1, 1},     {128, 28, 128, 3, 1, 1, 1},
                                   {256, 14, 256, 3, 1, 1, 1},   {512, 7, 512, 3, 1, 1, 1},
                                   {256, 14, 512, 1, 2, 0, 1},   {32, 112, 32, 3, 1, 1, 32},
                                   {144, 56, 144, 3, 2, 1, 144}, {576, 14, 576, 3, 1, 1, 576}};
  auto add = [](const std::string& name, auto&& fn, auto... args) {
    benchmark::RegisterBenchmark(name.c_str(), fn, args...)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond)
        ->Iterations(kGpuBenchIterations);
  };
  for (int bits : {4, 8}) {
    const std::string precision = absl::StrCat("W", bits, "A8");
    for (const auto& [k, n] : kGpuLinearShapes) {
      for (int64_t m : kGpuLinearBatches) {
        add(absl::StrCat("BM_PackedLinear/", precision, "/M", m, "_K", k, "_N", n),
            packed_linear_bench, m, k, n, bits);
      }
    }
    for (const ConvShape& s : conv_shapes) {
      for (int64_t batch : {1, 32, 256}) {
        add(absl::StrCat("BM_PackedConv2d/", precision, "/N", batch, "_C", s.channels, "_H",
                         s.height, "_O", s.out_channels, "_K", s.kernel, "_S", s.stride, "_P",
                         s.padding, "_G", s.groups),
            packed_conv_bench, batch, s, bits);
      }
    }
  }
}

}  // namespace ompq
