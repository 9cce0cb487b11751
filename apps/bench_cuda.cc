#include "apps/bench_cuda.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "apps/bench_gpu.h"
#include "core/ops/conv.h"
#include "core/ops/norm.h"
#include "core/ops/quant.h"
#include "core/random.h"
#include "cuda/cublaslt_gemm.h"
#include "runtime/init.h"

namespace ompq {
namespace {

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
  const int settings[][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
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

// Standard normal values drawn on the GPU (drawing the batch-256 activations on the host would
// take longer than timing them).
Tensor gpu_randn(const Shape& shape, DType dtype, bool channels_last, uint64_t seed) {
  Generator gen(seed);
  if (!channels_last) return randn(shape, gen, dtype, Device::cuda());
  const Shape nhwc = {shape[0], shape[2], shape[3], shape[1]};
  return randn(nhwc, gen, dtype, Device::cuda()).permute({0, 3, 1, 2});
}

// bf16, channels_last: the layout and precision of PyTorch's AMP training with channels_last.
void conv_bench(benchmark::State& state, int64_t batch, ConvLayer l, bool with_backward) {
  Conv2dParams p;
  p.stride = {l.stride, l.stride};
  p.padding = {l.padding, l.padding};
  p.groups = l.groups;
  const DType bf16 = DType::kBF16;
  const Tensor x = gpu_randn({batch, l.channels, l.height, l.height}, bf16, true, 1);
  const Tensor w =
      gpu_randn({l.out_channels, l.channels / l.groups, l.kernel, l.kernel}, bf16, false, 2);
  const Tensor grad =
      gpu_randn({batch, l.out_channels, l.out_height(), l.out_height()}, bf16, true, 3);
  time_gpu_launches(state, [&] {
    Tensor out = ops::conv2d(x, w, Tensor(), p);
    if (with_backward) out = ops::conv2d_backward(grad, x, w, {true, true, false}, p).input;
    return out;
  });
  const double flops = 2.0 * batch * l.out_channels * (l.channels / l.groups) * l.kernel *
                       l.kernel * l.out_height() * l.out_height() * (with_backward ? 3 : 1);
  set_gpu_rate(state, "TFLOPS", flops, 1e12);
  set_gpu_rate(state, "peak_fraction", flops, GpuPeaks::kBf16Flops);
}

// Operands of random values in [-lim, lim] drawn on the GPU and converted there.
Tensor gpu_uniform(const Shape& shape, DType dtype, double lim, uint64_t seed) {
  Generator gen(seed);
  Tensor t = Tensor::empty(shape, DType::kF32, Device::cuda());
  ops::uniform_(t, -lim, lim, gen);
  return t.to(dtype);
}

// out [M, N] = x [M, K] @ w^T with w a row-major [N, K] (linear's weight): bf16 -> bf16 or
// int8 -> int32. Bytes: the operands read and the output written once each.
void gemm_bench(benchmark::State& state, bool int8, int64_t m, int64_t k, int64_t n) {
  const DType in = int8 ? DType::kI8 : DType::kBF16, out_dtype = int8 ? DType::kI32 : DType::kBF16;
  const double lim = int8 ? 127.0 : 1.0;
  const Tensor x = gpu_uniform({1, m, k}, in, lim, 4);
  const Tensor w_rows = gpu_uniform({n, k}, in, lim, 5);
  const Tensor w = as_strided(w_rows, {1, k, n}, {k * n, 1, k}, 0);
  const Tensor out = Tensor::empty({1, m, n}, out_dtype, Device::cuda());
  time_gpu_launches(state, [&] {
    cuda::cublaslt_matmul(out, x, w, Tensor());
    return out;
  });
  const double flops = 2.0 * m * k * n;
  const double bytes =
      static_cast<double>((m * k + k * n) * dtype_size(in) + m * n * dtype_size(out_dtype));
  set_gpu_rate(state, "TFLOPS", flops, 1e12);
  set_gpu_rate(state, "peak_fraction", flops, int8 ? GpuPeaks::kInt8Ops : GpuPeaks::kBf16Flops);
  set_gpu_rate(state, "GBps", bytes, 1e9);
  set_gpu_rate(state, "hbm_fraction", bytes, GpuPeaks::kHbmBytesPerSecond);
}

// A ResNet activation [N, C, H, H] (far larger than the L2, so that the kernels stream from HBM).
struct Activation {
  int64_t batch, channels, height;
  Shape shape() const { return {batch, channels, height, height}; }
  double numel() const { return static_cast<double>(batch) * channels * height * height; }
  std::string name() const { return absl::StrCat("N", batch, "_C", channels, "_H", height); }
};

void set_bandwidth(benchmark::State& state, double bytes) {
  set_gpu_rate(state, "GBps", bytes, 1e9);
  set_gpu_rate(state, "hbm_fraction", bytes, GpuPeaks::kHbmBytesPerSecond);
}

// Fake-quant as QAT runs it: per tensor as an activation quantizer (unsigned 8 bits, zero point
// 0), per channel (axis 1) as a weight quantizer (signed 4 bits, symmetric). backward: the clipped
// STE input gradient and the step-size gradient. Bytes: forward reads x and writes the output;
// backward reads the output gradient and x and writes the input gradient (the [C] scale gradient
// is negligible).
void fake_quant_bench(benchmark::State& state, Activation a, bool per_channel, bool backward) {
  const Tensor x = gpu_randn(a.shape(), DType::kF32, false, 6);
  const Tensor grad = gpu_randn(a.shape(), DType::kF32, false, 7);
  const std::optional<int64_t> axis = per_channel ? std::optional<int64_t>(1) : std::nullopt;
  const Tensor scale = per_channel ? Tensor::full({a.channels}, 0.25, DType::kF32, Device::cuda())
                                   : Tensor::scalar(0.02, DType::kF32, Device::cuda());
  const QuantRange range = per_channel ? QuantRange{-8, 7} : QuantRange{0, 255};
  time_gpu_launches(state, [&] {
    if (!backward) return ops::fake_quantize(x, scale, Tensor(), axis, range);
    return ops::fake_quantize_backward(grad, x, scale, Tensor(), axis, range, /*clip=*/true,
                                       /*need_input=*/true, /*need_scale=*/true)
        .input;
  });
  set_bandwidth(state, (backward ? 3 : 2) * a.numel() * sizeof(float));
}

// Batch norm in training mode (batch statistics, running buffers updated; backward: the gradients
// of every input), NCHW or channels_last; plain, or fused with a residual add and ReLU as in a
// ResNet block (y = relu(BN(x) + residual)). Bytes, for the two passes a kernel needs when x does
// not fit on chip: forward reads x for the statistics, then x (and the residual) again to write y:
// 3 per element (4 fused); backward reads grad and x (and y, for ReLU's mask) for the channel sums,
// then again to write the input gradient (and the residual's): 5 per element (8 fused).
void batch_norm_bench(benchmark::State& state, Activation a, bool channels_last, bool fused,
                      bool backward) {
  const Tensor x = gpu_randn(a.shape(), DType::kF32, channels_last, 8);
  const Tensor grad = gpu_randn(a.shape(), DType::kF32, channels_last, 9);
  const Tensor residual = fused ? gpu_randn(a.shape(), DType::kF32, channels_last, 10) : Tensor();
  const NormActivation act = fused ? NormActivation::kRelu : NormActivation::kIdentity;
  const Tensor weight = Tensor::ones({a.channels}, DType::kF32, Device::cuda());
  const Tensor bias = Tensor::zeros({a.channels}, DType::kF32, Device::cuda());
  const Tensor running_mean = Tensor::zeros({a.channels}, DType::kF32, Device::cuda());
  const Tensor running_var = Tensor::ones({a.channels}, DType::kF32, Device::cuda());
  constexpr double kMomentum = 0.1, kEps = 1e-5;
  auto forward = [&] {
    return ops::batch_norm_act(x, weight, bias, running_mean, running_var, true, kMomentum, kEps,
                               act, residual);
  };
  const ops::BatchNormResult saved = forward();
  time_gpu_launches(state, [&] {
    if (!backward) return forward().output;
    return ops::batch_norm_act_backward(grad, x, saved.output, weight, saved.mean, saved.var, kEps,
                                        true, act, {true, true, true, fused})
        .input;
  });
  const double per_element = backward ? (fused ? 8 : 5) : (fused ? 4 : 3);
  set_bandwidth(state, per_element * a.numel() * sizeof(float));
}

}  // namespace

void register_cuda_benchmarks() {
  if (!cuda_available()) return;
  auto add = [](const std::string& name, auto&& fn, auto... args) {
    benchmark::RegisterBenchmark(name.c_str(), fn, args...)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond)
        ->Iterations(kGpuBenchIterations);
  };
  for (int64_t batch : {32, 256}) {
    for (const ConvLayer& l : model_conv_layers()) {
      const std::string name = absl::StrCat("BM_CudnnConv/N", batch, "_C", l.channels, "_H",
                                            l.height, "_O", l.out_channels, "_K", l.kernel, "_S",
                                            l.stride, "_P", l.padding, "_G", l.groups, "_CL");
      add(name + "/fwd", conv_bench, batch, l, false);
      add(name + "/fwdbwd", conv_bench, batch, l, true);
    }
  }
  for (bool int8 : {false, true}) {
    for (const auto& [k, n] : kGpuLinearShapes) {
      for (int64_t m : kGpuLinearBatches) {
        add(absl::StrCat("BM_Gemm/", int8 ? "int8" : "bf16", "/M", m, "_K", k, "_N", n), gemm_bench,
            int8, m, k, n);
      }
    }
  }
  // ResNet-18's and ResNet-50's first-stage activations at batch 256 (205 MB and 822 MB in f32).
  for (const Activation& a : {Activation{256, 64, 56}, Activation{256, 256, 56}}) {
    for (bool per_channel : {false, true}) {
      for (bool backward : {false, true}) {
        add(absl::StrCat("BM_CudaFakeQuant/", per_channel ? "per_channel" : "per_tensor",
                         backward ? "/bwd/" : "/fwd/", a.name()),
            fake_quant_bench, a, per_channel, backward);
      }
    }
    for (bool fused : {false, true}) {
      for (bool channels_last : {false, true}) {
        for (bool backward : {false, true}) {
          add(absl::StrCat("BM_CudaBatchNorm/", backward ? "train_bwd" : "train_fwd",
                           fused ? "_add_relu/" : "/", a.name(), channels_last ? "_CL" : ""),
              batch_norm_bench, a, channels_last, fused, backward);
        }
      }
    }
  }
}

}  // namespace ompq
