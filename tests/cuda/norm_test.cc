// CUDA batch norm against the CPU kernels on fresh random inputs: training and eval forward (output,
// batch statistics, running-buffer update) and backward (every subset of the gradients, with and
// without weight), for 2-d, 3-d and 4-d inputs of odd sizes, few channels with many values (the
// split reduction), many channels with few values, a channels-last input and a large mean.
// Both devices form the per-channel sums from the same T-valued terms, the CPU in T within
// 256-value chunks and double across them, the GPU in double: f32 statistics differ by ~1e-6
// relative, hence f32 rtol 1e-5 for forward values, 1e-4 for input gradients and an atol for the
// gradient sums proportional to their number of terms; f64 agrees to 1e-10. Needs a GPU.
#include <gtest/gtest.h>

#include "core/ops/norm.h"
#include "cuda_test_util.h"

namespace ompq {
namespace {

using testing::expect_close;
using testing::random_tensor_in;

Tensor on_gpu(const Tensor& t) { return t.defined() ? t.to(Device::cuda()) : t; }

struct Tolerance {
  double rtol, atol;
};

Tolerance forward_tolerance(DType dtype) {
  return dtype == DType::kF32 ? Tolerance{1e-5, 1e-5} : Tolerance{1e-10, 1e-10};
}

struct Shapes {
  const char* name;
  Shape shape;
};

const Shapes kShapes[] = {
    {"[N, C]", {37, 5}},
    {"[N, C, L]", {3, 4, 11}},
    {"odd 4-d", {3, 5, 7, 9}},
    {"few channels, many values (split sums)", {16, 3, 41, 43}},
    {"many channels, one value each per sample", {2, 300, 1, 1}},
};

struct Params {
  Tensor weight, bias, running_mean, running_var;
};

// Weight in [0.5, 2), bias in [-1, 1), running buffers as a trained layer would hold them.
Params random_params(int64_t channels, DType dtype, uint64_t seed, bool affine, bool running) {
  Params p;
  if (affine) {
    p.weight = random_tensor_in({channels}, dtype, seed, 0.5, 2);
    p.bias = random_tensor_in({channels}, dtype, seed + 1, -1, 1);
  }
  if (running) {
    p.running_mean = random_tensor_in({channels}, dtype, seed + 2, -1, 1);
    p.running_var = random_tensor_in({channels}, dtype, seed + 3, 0.5, 2);
  }
  return p;
}

Params params_on_gpu(const Params& p) {
  return {on_gpu(p.weight), on_gpu(p.bias), on_gpu(p.running_mean), on_gpu(p.running_var)};
}

// Runs batch_norm on both devices (each on its own copy of the running buffers) and compares the
// output, the statistics and the updated buffers.
void expect_forward_matches(const Tensor& x, const Tensor& x_gpu, const Params& p, bool training,
                            Tolerance tol) {
  const Params cpu = {p.weight, p.bias, p.running_mean.defined() ? p.running_mean.clone() : Tensor(),
                      p.running_var.defined() ? p.running_var.clone() : Tensor()};
  const Params gpu = params_on_gpu(p);
  const double momentum = 0.1, eps = 1e-5;
  const auto expected = ops::batch_norm(x, cpu.weight, cpu.bias, cpu.running_mean,
                                        cpu.running_var, training, momentum, eps);
  const auto actual = ops::batch_norm(x_gpu, gpu.weight, gpu.bias, gpu.running_mean,
                                      gpu.running_var, training, momentum, eps);
  ASSERT_TRUE(actual.output.device().is_cuda());
  expect_close(expected.output, actual.output, tol.rtol, tol.atol, "output");
  expect_close(expected.mean, actual.mean, tol.rtol, tol.atol, "mean");
  expect_close(expected.var, actual.var, tol.rtol, tol.atol, "var");
  if (cpu.running_mean.defined()) {
    expect_close(cpu.running_mean, gpu.running_mean, tol.rtol, tol.atol, "running_mean");
    expect_close(cpu.running_var, gpu.running_var, tol.rtol, tol.atol, "running_var");
  }
}

TEST(CudaBatchNorm, TrainingForwardMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 7000;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const Shapes& s : kShapes) {
      for (bool affine : {true, false}) {
        for (bool running : {true, false}) {
          SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + s.name + (affine ? " affine" : "") +
                       (running ? " running" : ""));
          const Tensor x = random_tensor_in(s.shape, dtype, seed++, -8, 8);
          const Params p = random_params(s.shape[1], dtype, seed, affine, running);
          seed += 4;
          expect_forward_matches(x, on_gpu(x), p, /*training=*/true, forward_tolerance(dtype));
        }
      }
    }
  }
}

TEST(CudaBatchNorm, EvalForwardMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 7100;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const Shapes& s : kShapes) {
      for (bool affine : {true, false}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + s.name + (affine ? " affine" : ""));
        const Tensor x = random_tensor_in(s.shape, dtype, seed++, -8, 8);
        const Params p = random_params(s.shape[1], dtype, seed, affine, /*running=*/true);
        seed += 4;
        expect_forward_matches(x, on_gpu(x), p, /*training=*/false, forward_tolerance(dtype));
      }
    }
  }
}

TEST(CudaBatchNorm, ChannelsLastInputAndLargeMean) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 7200;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    SCOPED_TRACE(dtype_name(dtype));
    // A channels-last view: the op makes it contiguous before the kernel runs.
    const Tensor nhwc = random_tensor_in({4, 9, 7, 6}, dtype, seed++, -8, 8);
    const Params p = random_params(6, dtype, seed, true, true);
    seed += 4;
    expect_forward_matches(nhwc.permute({0, 3, 1, 2}), on_gpu(nhwc).permute({0, 3, 1, 2}), p,
                           true, forward_tolerance(dtype));
    // Values 1000 +- 1: without the shift, E[x^2] - E[x]^2 would lose every digit of f32 and the
    // variance would be off by O(1). The mean is rounded to T before it is subtracted, and the two
    // devices' means may round to neighbouring floats (an ulp of 1000 is 6e-5), which moves y by
    // up to 6e-5 * weight / std ~ 2e-4 in f32.
    const Tensor offset = random_tensor_in({8, 3, 15, 17}, dtype, seed++, 999, 1001);
    const Tolerance offset_tolerance =
        dtype == DType::kF32 ? Tolerance{1e-5, 5e-4} : forward_tolerance(dtype);
    expect_forward_matches(offset, on_gpu(offset), random_params(3, dtype, seed, true, true), true,
                           offset_tolerance);
    seed += 4;
  }
}

// Runs batch_norm_backward on both devices with the statistics of a CPU forward pass.
void expect_backward_matches(const Shape& shape, DType dtype, uint64_t seed, bool training,
                             bool affine, std::array<bool, 3> needed) {
  const Tensor x = random_tensor_in(shape, dtype, seed, -2, 2);
  const Tensor dy = random_tensor_in(shape, dtype, seed + 1, -2, 2);
  const Params p = random_params(shape[1], dtype, seed + 2, affine, /*running=*/true);
  const auto forward =
      ops::batch_norm(x, p.weight, p.bias, p.running_mean, p.running_var, training, 0.1, 1e-5);
  const double eps = 1e-5;
  const auto expected =
      ops::batch_norm_backward(dy, x, p.weight, forward.mean, forward.var, eps, training, needed);
  const auto actual = ops::batch_norm_backward(on_gpu(dy), on_gpu(x), on_gpu(p.weight),
                                               on_gpu(forward.mean), on_gpu(forward.var), eps,
                                               training, needed);
  const bool f32 = dtype == DType::kF32;
  // grad_weight and grad_bias are sums of count terms of magnitude <= 4 that largely cancel.
  const double count = static_cast<double>(x.numel() / shape[1]);
  const double sum_atol = (f32 ? 1e-6 : 1e-12) * 4 * count;
  const double rtol = f32 ? 1e-4 : 1e-10, atol = f32 ? 1e-4 : 1e-10;
  EXPECT_EQ(expected.input.defined(), actual.input.defined());
  EXPECT_EQ(expected.weight.defined(), actual.weight.defined());
  EXPECT_EQ(expected.bias.defined(), actual.bias.defined());
  if (expected.input.defined()) expect_close(expected.input, actual.input, rtol, atol, "grad input");
  if (expected.weight.defined()) {
    expect_close(expected.weight, actual.weight, rtol, sum_atol, "grad weight");
  }
  if (expected.bias.defined()) expect_close(expected.bias, actual.bias, rtol, sum_atol, "grad bias");
}

TEST(CudaBatchNorm, BackwardMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 7300;
  const std::array<bool, 3> kNeeded[] = {
      {true, true, true}, {true, false, false}, {false, true, true}, {false, false, true}};
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const Shapes& s : kShapes) {
      for (bool training : {true, false}) {
        for (bool affine : {true, false}) {
          for (const auto& needed : kNeeded) {
            SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + s.name +
                         (training ? " training" : " eval") + (affine ? " affine" : "") +
                         " needed " + std::to_string(needed[0]) + std::to_string(needed[1]) +
                         std::to_string(needed[2]));
            expect_backward_matches(s.shape, dtype, seed, training, affine, needed);
            seed += 4;
          }
        }
      }
    }
  }
}

TEST(CudaBatchNorm, EmptyBatchGivesAnEmptyOutput) {
  OMPQ_REQUIRE_GPU();
  const Params p = params_on_gpu(random_params(3, DType::kF32, 7400, true, true));
  const auto r = ops::batch_norm(Tensor::empty({0, 3, 4, 4}, DType::kF32, Device::cuda()),
                                 p.weight, p.bias, p.running_mean, p.running_var, false, 0.1, 1e-5);
  EXPECT_EQ(r.output.shape(), (Shape{0, 3, 4, 4}));
  EXPECT_TRUE(r.output.device().is_cuda());
}

}  // namespace
}  // namespace ompq
