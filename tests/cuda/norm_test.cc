// CUDA batch norm against the CPU kernels on fresh random inputs: training and eval forward
// (output, batch statistics, running-buffer update) and backward (every subset of the gradients,
// with and without weight), for 2-d, 3-d and 4-d inputs of odd sizes, few channels with many values
// (the split reduction), many channels with few values, channels_last (NHWC) inputs and a large
// mean; and batch_norm_act (residual add and relu / relu6 fused) forward and backward, both
// layouts. Both devices form the per-channel sums from the same T-valued terms, the CPU in T within
// 256-value chunks and double across them, the GPU in double: f32 statistics differ by ~1e-6
// relative, hence f32 rtol 1e-5 for forward values, 1e-4 for input gradients and an atol for the
// gradient sums proportional to their number of terms; f64 agrees to 1e-10. Needs a GPU.
#include "core/ops/norm.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

#include "core/functional/elementwise.h"
#include "core/ops/conv.h"
#include "cuda_test_util.h"

namespace ompq {
namespace {

using testing::expect_close;
using testing::on_gpu;
using testing::random_tensor_in;

// The same values in channels_last memory, on t's device.
Tensor to_channels_last(const Tensor& t) {
  return t.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
}

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
  const Params cpu = {p.weight, p.bias,
                      p.running_mean.defined() ? p.running_mean.clone() : Tensor(),
                      p.running_var.defined() ? p.running_var.clone() : Tensor()};
  const Params gpu = params_on_gpu(p);
  const double momentum = 0.1, eps = 1e-5;
  const auto expected = ops::batch_norm(x, cpu.weight, cpu.bias, cpu.running_mean, cpu.running_var,
                                        training, momentum, eps);
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
    // A channels-last view of NHWC memory: the kernels read it as it is.
    const Tensor nhwc = random_tensor_in({4, 9, 7, 6}, dtype, seed++, -8, 8);
    const Params p = random_params(6, dtype, seed, true, true);
    seed += 4;
    expect_forward_matches(nhwc.permute({0, 3, 1, 2}), on_gpu(nhwc).permute({0, 3, 1, 2}), p, true,
                           forward_tolerance(dtype));
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

// Runs batch_norm_backward on both devices with the statistics of a CPU forward pass; x (and
// hence the input gradient) in NCHW or channels_last memory.
void expect_backward_matches(const Shape& shape, DType dtype, uint64_t seed, bool training,
                             bool affine, std::array<bool, 3> needed, bool channels_last = false) {
  auto layout = [&](const Tensor& t) { return channels_last ? to_channels_last(t) : t; };
  const Tensor x = layout(random_tensor_in(shape, dtype, seed, -2, 2));
  const Tensor dy = random_tensor_in(shape, dtype, seed + 1, -2, 2);
  const Params p = random_params(shape[1], dtype, seed + 2, affine, /*running=*/true);
  const auto forward =
      ops::batch_norm(x, p.weight, p.bias, p.running_mean, p.running_var, training, 0.1, 1e-5);
  const double eps = 1e-5;
  const auto expected =
      ops::batch_norm_backward(dy, x, p.weight, forward.mean, forward.var, eps, training, needed);
  const auto actual =
      ops::batch_norm_backward(on_gpu(dy), layout(on_gpu(x)), on_gpu(p.weight),
                               on_gpu(forward.mean), on_gpu(forward.var), eps, training, needed);
  const bool f32 = dtype == DType::kF32;
  // grad_weight and grad_bias are sums of count terms of magnitude <= 4 that largely cancel.
  const double count = static_cast<double>(x.numel() / shape[1]);
  const double sum_atol = (f32 ? 1e-6 : 1e-12) * 4 * count;
  const double rtol = f32 ? 1e-4 : 1e-10, atol = f32 ? 1e-4 : 1e-10;
  EXPECT_EQ(expected.input.defined(), actual.input.defined());
  EXPECT_EQ(expected.weight.defined(), actual.weight.defined());
  EXPECT_EQ(expected.bias.defined(), actual.bias.defined());
  if (expected.input.defined()) {
    EXPECT_EQ(is_channels_last(actual.input), channels_last);
    expect_close(expected.input, actual.input, rtol, atol, "grad input");
  }
  if (expected.weight.defined()) {
    expect_close(expected.weight, actual.weight, rtol, sum_atol, "grad weight");
  }
  if (expected.bias.defined())
    expect_close(expected.bias, actual.bias, rtol, sum_atol, "grad bias");
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
  const auto r = ops::batch_norm(Tensor::empty({0, 3, 4, 4}, DType::kF32, Device::cuda()), p.weight,
                                 p.bias, p.running_mean, p.running_var, false, 0.1, 1e-5);
  EXPECT_EQ(r.output.shape(), (Shape{0, 3, 4, 4}));
  EXPECT_TRUE(r.output.device().is_cuda());
}

// NHWC shapes: channel counts below, off and above the 32-channel tile, few channels with many
// rows (split sums), many channels with few rows.
const Shape kChannelsLastShapes[] = {{3, 5, 7, 9}, {2, 70, 6, 5}, {16, 3, 41, 43}, {2, 300, 2, 1}};

TEST(CudaBatchNorm, ChannelsLastForwardAndBackwardMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 7500;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const Shape& shape : kChannelsLastShapes) {
      for (bool training : {true, false}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + shape_str(shape) +
                     (training ? " training" : " eval"));
        const Tensor x = to_channels_last(random_tensor_in(shape, dtype, seed, -8, 8));
        const Tensor x_gpu = to_channels_last(on_gpu(x));
        ASSERT_TRUE(is_channels_last(x_gpu));
        expect_forward_matches(x, x_gpu, random_params(shape[1], dtype, seed + 1, true, true),
                               training, forward_tolerance(dtype));
        expect_backward_matches(shape, dtype, seed + 5, training, /*affine=*/true,
                                {true, true, true}, /*channels_last=*/true);
        const auto out_gpu =
            ops::batch_norm(x_gpu, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
        EXPECT_TRUE(is_channels_last(out_gpu.output));
        seed += 8;
      }
    }
  }
}

// batch_norm_act on both devices: the forward (output, statistics, running buffers), then the
// backward of every gradient from the CPU's forward output (so that both devices differentiate
// the activation at the same points).
void expect_fused_matches(const Shape& shape, bool channels_last, DType dtype, uint64_t seed,
                          bool training, NormActivation activation, bool with_residual) {
  auto layout = [&](const Tensor& t) { return channels_last ? to_channels_last(t) : t; };
  const Tensor x = layout(random_tensor_in(shape, dtype, seed, -2, 2));
  const Tensor residual =
      with_residual ? layout(random_tensor_in(shape, dtype, seed + 1, -3, 3)) : Tensor();
  const Tensor dy = random_tensor_in(shape, dtype, seed + 2, -2, 2);
  // Weight and bias wide enough that relu6 clips at both ends.
  Params p = random_params(shape[1], dtype, seed + 3, true, true);
  p.weight = p.weight * 2.0;
  p.bias = p.bias + 2.0;
  const Params gpu = params_on_gpu(p);
  const Tensor cpu_rm = p.running_mean.clone(), cpu_rv = p.running_var.clone();
  const auto expected = ops::batch_norm_act(x, p.weight, p.bias, cpu_rm, cpu_rv, training, 0.1,
                                            1e-5, activation, residual);
  const Tensor x_gpu = layout(on_gpu(x));
  const auto actual =
      ops::batch_norm_act(x_gpu, gpu.weight, gpu.bias, gpu.running_mean, gpu.running_var, training,
                          0.1, 1e-5, activation, layout(on_gpu(residual)));
  EXPECT_EQ(is_channels_last(actual.output), channels_last);
  const Tolerance tol = forward_tolerance(dtype);
  expect_close(expected.output, actual.output, tol.rtol, tol.atol, "output");
  expect_close(expected.mean, actual.mean, tol.rtol, tol.atol, "mean");
  expect_close(expected.var, actual.var, tol.rtol, tol.atol, "var");
  expect_close(cpu_rm, gpu.running_mean, tol.rtol, tol.atol, "running_mean");
  expect_close(cpu_rv, gpu.running_var, tol.rtol, tol.atol, "running_var");

  const std::array<bool, 4> all = {true, true, true, with_residual};
  const auto grads = ops::batch_norm_act_backward(dy, x, expected.output, p.weight, expected.mean,
                                                  expected.var, 1e-5, training, activation, all);
  const auto grads_gpu = ops::batch_norm_act_backward(
      on_gpu(dy), x_gpu, layout(on_gpu(expected.output)), gpu.weight, on_gpu(expected.mean),
      on_gpu(expected.var), 1e-5, training, activation, all);
  const bool f32 = dtype == DType::kF32;
  const double count = static_cast<double>(x.numel() / shape[1]);
  const double sum_atol = (f32 ? 1e-6 : 1e-12) * 4 * count;
  const double rtol = f32 ? 1e-4 : 1e-10, atol = f32 ? 1e-4 : 1e-10;
  EXPECT_EQ(is_channels_last(grads_gpu.input), channels_last);
  expect_close(grads.input, grads_gpu.input, rtol, atol, "grad input");
  expect_close(grads.weight, grads_gpu.weight, rtol, sum_atol, "grad weight");
  expect_close(grads.bias, grads_gpu.bias, rtol, sum_atol, "grad bias");
  if (with_residual) expect_close(grads.residual, grads_gpu.residual, 0, 0, "grad residual");
}

TEST(CudaBatchNorm, FusedActivationAndResidualMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  struct Layout {
    Shape shape;
    bool channels_last;
  };
  const Layout layouts[] = {
      {{3, 5, 7, 9}, false}, {{37, 5}, false}, {{3, 70, 6, 5}, true}, {{16, 3, 41, 43}, true}};
  uint64_t seed = 7600;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const Layout& l : layouts) {
      for (bool training : {true, false}) {
        for (NormActivation activation :
             {NormActivation::kIdentity, NormActivation::kRelu, NormActivation::kRelu6}) {
          for (bool with_residual : {false, true}) {
            SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + shape_str(l.shape) +
                         (l.channels_last ? " channels_last" : "") +
                         (training ? " training" : " eval") + " activation " +
                         std::to_string(static_cast<int>(activation)) +
                         (with_residual ? " + residual" : ""));
            expect_fused_matches(l.shape, l.channels_last, dtype, seed, training, activation,
                                 with_residual);
            seed += 4;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace ompq
