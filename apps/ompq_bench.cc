// Kernel benchmarks (Google Benchmark): CPU convolution forward and backward on the distinct
// ResNet-18 layer shapes (and two MobileNetV2 depthwise ones), matmul, pooling and elementwise
// ops, reporting FLOP/s or bytes/s; and whole-model training steps and inference (BM_TrainStep,
// BM_Infer) reporting images/s and the case's peak resident memory (bench_memory.h), on the CPU
// (BM_TrainStep/resnet18/32/224) and, when a GPU is usable, on cuda:0 under bf16 autocast
// (BM_TrainStep/cuda/resnet18/64/224, the peer of scripts/bench_torch_gpu.py's
// train/resnet18/64/224). The GPU kernel families are registered by bench_cuda.cc and
// bench_lowbit.cc, the data pipeline's by bench_data.cc, the packed integer models' inference
// (BM_InferPacked) by bench_packed.cc. Benchmark names carry every parameter of the case (e.g.
// BM_Conv2dForward/N32_C64_H56_O128_K3_S2_P1_G1) so that scripts/bench_torch_ops.py can rerun the
// same cases in PyTorch from the JSON output (scripts/bench_torch_models.py for the model cases).
//
//   ./build/apps/ompq_bench [--batch=32] [--model_iterations=N] [--model_layout=nchw]
//       [--model_precision=bf16] [--packed_dir=DIR] [--benchmark_filter=Conv]
//       [--benchmark_format=json]
// --model_iterations replaces the default iteration counts of BM_TrainStep and BM_Infer;
// --model_layout=nchw runs them NCHW instead of channels_last (for comparing the two);
// --model_precision=bf16 (or f16) runs the CPU model cases under autocast, BM_Infer with bf16 (f16)
// activations between layers (the GPU ones always run bf16, as their PyTorch peer does);
// --packed_dir=DIR saves the packed model of each BM_InferPacked case run into DIR (an existing
// folder), for ompq_export.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "apps/bench_cuda.h"
#include "apps/bench_data.h"
#include "apps/bench_gpu.h"
#include "apps/bench_lowbit.h"
#include "apps/bench_memory.h"
#include "apps/bench_packed.h"
#include "core/autocast.h"
#include "core/autograd.h"
#include "core/functional/conv.h"
#include "core/functional/softmax.h"
#include "core/ops/conv.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/pool.h"
#include "core/random.h"
#include "layers/models/registry.h"
#include "layers/optim.h"
#include "runtime/init.h"

namespace ompq {
namespace {

struct ConvShape {
  int64_t channels, height, out_channels, kernel, stride, padding, groups;
};

// The distinct convolutions of ResNet-18 at 224x224 (stem, the 3x3 convs of each stage, the
// strided first conv of stages 2-4 and their 1x1 downsample shortcuts), then two depthwise
// convolutions of MobileNetV2.
const ConvShape kConvShapes[] = {
    {3, 224, 64, 7, 2, 3, 1},     {64, 56, 64, 3, 1, 1, 1},   {64, 56, 128, 3, 2, 1, 1},
    {128, 28, 128, 3, 1, 1, 1},   {64, 56, 128, 1, 2, 0, 1},  {128, 28, 256, 3, 2, 1, 1},
    {256, 14, 256, 3, 1, 1, 1},   {128, 28, 256, 1, 2, 0, 1}, {256, 14, 512, 3, 2, 1, 1},
    {512, 7, 512, 3, 1, 1, 1},    {256, 14, 512, 1, 2, 0, 1}, {32, 112, 32, 3, 1, 1, 32},
    {144, 56, 144, 3, 2, 1, 144},
};

struct ConvCase {
  int64_t batch;
  ConvShape shape;
  bool channels_last;

  Conv2dParams params() const {
    Conv2dParams p;
    p.stride = {shape.stride, shape.stride};
    p.padding = {shape.padding, shape.padding};
    p.groups = shape.groups;
    return p;
  }
  Shape x_shape() const { return {batch, shape.channels, shape.height, shape.height}; }
  Shape w_shape() const {
    return {shape.out_channels, shape.channels / shape.groups, shape.kernel, shape.kernel};
  }
  double forward_flops() const {
    int64_t out = (shape.height + 2 * shape.padding - shape.kernel) / shape.stride + 1;
    return 2.0 * batch * shape.out_channels * (shape.channels / shape.groups) * shape.kernel *
           shape.kernel * out * out;
  }
  std::string name() const {
    return absl::StrCat("N", batch, "_C", shape.channels, "_H", shape.height, "_O",
                        shape.out_channels, "_K", shape.kernel, "_S", shape.stride, "_P",
                        shape.padding, "_G", shape.groups, channels_last ? "_CL" : "");
  }
  Tensor input(Generator& gen) const {
    Tensor x = randn(x_shape(), gen);
    return channels_last ? x.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2}) : x;
  }
};

void set_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOPS"] =
      benchmark::Counter(flops_per_iteration * state.iterations(), benchmark::Counter::kIsRate);
}

void set_bytes(benchmark::State& state, double bytes_per_iteration) {
  state.counters["bytes_per_second"] =
      benchmark::Counter(bytes_per_iteration * state.iterations(), benchmark::Counter::kIsRate);
}

void conv_forward(benchmark::State& state, ConvCase c) {
  Generator gen(1);
  Tensor x = c.input(gen), w = randn(c.w_shape(), gen);
  for (auto _ : state) benchmark::DoNotOptimize(ops::conv2d(x, w, Tensor(), c.params()));
  set_flops(state, c.forward_flops());
}

// Both gradients (input and weight) in one call, as the autograd rule of an inner layer asks.
void conv_backward(benchmark::State& state, ConvCase c) {
  Generator gen(2);
  Tensor x = c.input(gen), w = randn(c.w_shape(), gen);
  Tensor out = ops::conv2d(x, w, Tensor(), c.params());
  Tensor grad = randn(out.shape(), gen);
  if (c.channels_last) grad = grad.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
  for (auto _ : state) {
    benchmark::DoNotOptimize(ops::conv2d_backward(grad, x, w, {true, true, false}, c.params()));
  }
  set_flops(state, 2 * c.forward_flops());
}

void matmul(benchmark::State& state, int64_t m, int64_t k, int64_t n) {
  Generator gen(3);
  Tensor a = randn({m, k}, gen), b = randn({k, n}, gen);
  for (auto _ : state) benchmark::DoNotOptimize(ops::matmul(a, b));
  set_flops(state, 2.0 * m * k * n);
}

void add(benchmark::State& state, int64_t n) {
  Generator gen(4);
  Tensor a = randn({n}, gen), b = randn({n}, gen);
  for (auto _ : state) benchmark::DoNotOptimize(ops::add(a, b));
  set_bytes(state, 3.0 * n * sizeof(float));
}

void relu(benchmark::State& state, int64_t n) {
  Generator gen(5);
  Tensor a = randn({n}, gen);
  for (auto _ : state) benchmark::DoNotOptimize(ops::relu(a));
  set_bytes(state, 2.0 * n * sizeof(float));
}

// ResNet's stem max pool: kernel 3, stride 2, padding 1; bytes = input read + output and indices
// written.
void max_pool(benchmark::State& state, int64_t batch) {
  Generator gen(6);
  Tensor x = randn({batch, 64, 112, 112}, gen);
  const Pool2dParams p{{3, 3}, {2, 2}, {1, 1}};
  for (auto _ : state) benchmark::DoNotOptimize(ops::max_pool2d(x, p));
  set_bytes(state, batch * 64 * (112 * 112 * 4.0 + 56 * 56 * (4.0 + 8.0)));
}

// A whole model on random images of one size. The images are NCHW, as a data loader gives them;
// with channels_last the model copies them to that layout in every step (inside the timing), and
// the whole network then runs channels_last, its fastest layout on the CPU (docs/PERF.md).
// On a GPU (cuda:0) the model's forward and loss run under bf16 autocast, as
// scripts/bench_torch_gpu.py runs PyTorch's.
struct ModelCase {
  std::string model;
  int64_t batch, resolution;
  bool channels_last;
  Device device;
  DType precision;  // f32, or the autocast dtype of the step

  int64_t num_classes() const { return benchmark_num_classes(model); }
  // "resnet18/32/224" on the CPU, "cuda/resnet18/64/224" on the GPU.
  std::string name() const {
    return absl::StrCat(device.is_cuda() ? "cuda/" : "", model, "/", batch, "/", resolution);
  }
  std::shared_ptr<nn::Model> make(Generator& gen) const {
    std::shared_ptr<nn::Model> m = make_benchmark_model(model, channels_last, gen);
    m->to(device);
    return m;
  }
  Tensor images(Generator& gen) const {
    return randn({batch, 3, resolution, resolution}, gen, DType::kF32, device);
  }
  // Untimed steps before the timing: first-touch allocations and momentum buffers; on a GPU also
  // cuDNN's per-shape plans and the caching allocator's segments.
  int warmup_steps() const { return device.is_cuda() ? 3 : 1; }
};

void set_images_per_second(benchmark::State& state, int64_t batch) {
  state.counters["items_per_second"] = benchmark::Counter(
      static_cast<double>(batch * state.iterations()), benchmark::Counter::kIsRate);
}

// One SGD training step as in solver/train/trainer.cc: forward in train mode, cross-entropy,
// backward, SGD with momentum 0.9 and weight decay (the optimizer's fused update kernel). On a GPU
// each step ends waiting for the device, so the time is the device's, not the launches'.
void train_step(benchmark::State& state, ModelCase c) {
  const int64_t start_resident_bytes = reset_peak_resident_bytes();
  Generator gen(7);
  std::shared_ptr<nn::Model> model = c.make(gen);
  model->train();
  SgdOptions options;
  options.lr = 0.01;
  options.momentum = 0.9;
  options.weight_decay = 1e-4;
  nn::SGD optimizer(model->parameters(), options);
  const Tensor x = c.images(gen);
  std::vector<int64_t> classes(c.batch);
  for (int64_t i = 0; i < c.batch; ++i) classes[i] = i % c.num_classes();
  const Tensor labels = Tensor::from_vector(classes, {c.batch}).to(c.device);
  auto step = [&] {
    Tensor loss;
    {
      AutocastGuard autocast(c.precision);
      loss = cross_entropy((*model)(x), labels);
    }
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    benchmark::DoNotOptimize(loss.data_ptr());
    wait_for_device(loss);
  };
  for (int i = 0; i < c.warmup_steps(); ++i) step();
  for (auto _ : state) step();
  set_images_per_second(state, c.batch);
  set_memory_counters(state, start_resident_bytes);
}

void infer(benchmark::State& state, ModelCase c) {
  const int64_t start_resident_bytes = reset_peak_resident_bytes();
  Generator gen(8);
  std::shared_ptr<nn::Model> model = c.make(gen);
  model->eval();
  NoGradGuard no_grad;
  const Tensor x = c.images(gen);
  auto step = [&] {
    // bf16/f16 activations between layers where the device has kernels for them (the CPU).
    AutocastGuard autocast(c.precision, AutocastActivations::kLowPrecision);
    const Tensor logits = (*model)(x);
    benchmark::DoNotOptimize(logits.data_ptr());
    wait_for_device(logits);
  };
  for (int i = 0; i < c.warmup_steps(); ++i) step();
  for (auto _ : state) step();
  set_images_per_second(state, c.batch);
  set_memory_counters(state, start_resident_bytes);
}

void register_model_benchmarks(int64_t batch, int64_t iterations, bool channels_last,
                               DType cpu_precision) {
  std::vector<Device> devices = {Device::cpu()};
  if (cuda_available()) devices.push_back(Device::cuda(0));
  for (const Device& device : devices) {
    const DType precision = device.is_cuda() ? DType::kBF16 : cpu_precision;
    const ModelCase cases[] = {{"resnet20", batch, 32, channels_last, device, precision},
                               {"resnet18", batch, 224, channels_last, device, precision},
                               {"resnet50", batch, 224, channels_last, device, precision},
                               {"mobilenet_v2", batch, 224, channels_last, device, precision}};
    for (const ModelCase& c : cases) {
      // A fixed iteration count after the untimed warm-up keeps a case to tens of seconds on two
      // cores (seconds per step) and to seconds on a GPU (scripts/gpu_check.sh counts on it).
      const bool small = c.resolution <= 32, gpu = device.is_cuda();
      const int64_t train_iterations = gpu ? 20 : small ? 20 : 3;
      const int64_t infer_iterations = gpu ? 30 : small ? 40 : 5;
      // CPU time of the whole process (every OpenMP thread): on a machine shared with other
      // work it still measures the case's own work, where wall time measures the load too.
      benchmark::RegisterBenchmark(("BM_TrainStep/" + c.name()).c_str(), train_step, c)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MeasureProcessCPUTime()
          ->Iterations(iterations > 0 ? iterations : train_iterations);
      benchmark::RegisterBenchmark(("BM_Infer/" + c.name()).c_str(), infer, c)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MeasureProcessCPUTime()
          ->Iterations(iterations > 0 ? iterations : infer_iterations);
    }
  }
}

void register_benchmarks(int64_t batch, int64_t model_iterations, bool model_channels_last,
                         DType model_precision) {
  for (bool channels_last : {false, true}) {
    for (const ConvShape& s : kConvShapes) {
      ConvCase c{batch, s, channels_last};
      benchmark::RegisterBenchmark(("BM_Conv2dForward/" + c.name()).c_str(), conv_forward, c)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark(("BM_Conv2dBackward/" + c.name()).c_str(), conv_backward, c)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
  const int64_t matmul_sizes[][3] = {
      {256, 256, 256}, {1024, 1024, 1024}, {batch, 512, 1000}, {batch * 49, 512, 512}};
  for (const auto& s : matmul_sizes) {
    benchmark::RegisterBenchmark(absl::StrCat("BM_Matmul/M", s[0], "_K", s[1], "_N", s[2]).c_str(),
                                 matmul, s[0], s[1], s[2])
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
  // A ResNet-18 stage-1 activation ([batch, 64, 56, 56]) and a cache-resident 64K vector.
  for (int64_t n : {batch * 64 * 56 * 56, int64_t{65536}}) {
    benchmark::RegisterBenchmark(absl::StrCat("BM_Add/n", n).c_str(), add, n)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(absl::StrCat("BM_Relu/n", n).c_str(), relu, n)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
  benchmark::RegisterBenchmark(absl::StrCat("BM_MaxPool2d/N", batch, "_C64_H112_K3_S2_P1").c_str(),
                               max_pool, batch)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  register_model_benchmarks(batch, model_iterations, model_channels_last, model_precision);
}

}  // namespace
}  // namespace ompq

int main(int argc, char** argv) {
  ompq::init();
  // --batch=N, --model_iterations=N, --model_layout=L, --model_precision=P and --packed_dir=DIR
  // (ours) are taken out before Google Benchmark parses the rest.
  int64_t batch = 32, model_iterations = 0;
  bool model_channels_last = true;
  ompq::DType model_precision = ompq::DType::kF32;
  std::string packed_dir;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--batch=", 8) == 0) {
      batch = std::atoll(argv[i] + 8);
    } else if (std::strncmp(argv[i], "--model_iterations=", 19) == 0) {
      model_iterations = std::atoll(argv[i] + 19);
    } else if (std::strncmp(argv[i], "--packed_dir=", 13) == 0) {
      packed_dir = argv[i] + 13;
      if (!std::filesystem::is_directory(packed_dir)) {
        std::fprintf(stderr,
                     "ompq_bench: --packed_dir=%s is not a folder (expected an existing one)\n",
                     packed_dir.c_str());
        return 1;
      }
    } else if (std::strncmp(argv[i], "--model_layout=", 15) == 0) {
      const std::string layout = argv[i] + 15;
      if (layout != "nchw" && layout != "channels_last") {
        std::fprintf(stderr, "ompq_bench: --model_layout=%s (expected nchw or channels_last)\n",
                     layout.c_str());
        return 1;
      }
      model_channels_last = layout == "channels_last";
    } else if (std::strncmp(argv[i], "--model_precision=", 18) == 0) {
      const std::string precision = argv[i] + 18;
      if (precision == "bf16") {
        model_precision = ompq::DType::kBF16;
      } else if (precision == "f16") {
        model_precision = ompq::DType::kF16;
      } else if (precision != "f32") {
        std::fprintf(stderr, "ompq_bench: --model_precision=%s (expected f32, bf16 or f16)\n",
                     precision.c_str());
        return 1;
      }
    } else {
      args.push_back(argv[i]);
    }
  }
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  ompq::register_benchmarks(batch, model_iterations, model_channels_last, model_precision);
  ompq::register_packed_benchmarks(batch, model_iterations, packed_dir);
  ompq::register_data_benchmarks();
#if defined(OMPQ_WITH_CUDA)
  ompq::register_cuda_benchmarks();
#endif
  ompq::register_lowbit_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
