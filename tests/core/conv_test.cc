// conv2d: f64 finite-difference gradients (stride, padding, dilation, groups, depthwise, bias or
// not, channels_last), the oneDNN f32 path against the f64 direct loops in every compute layout,
// PyTorch 1.13 golden values, and bad inputs.
#include "core/functional/conv.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/random.h"
#include "tests/core/golden_inputs.h"
#include "tests/gradcheck.h"

namespace ompq {
namespace {

using ::testing::AllOf;
using testing::expect_all_close;
using testing::expect_gradients_match;
using ::testing::HasSubstr;
using testing::pattern_tensor;

Tensor to_channels_last(const Tensor& t) {
  return t.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
}

struct ConvCase {
  const char* name;
  Shape x, w;
  Conv2dParams p;
  bool bias;
  bool channels_last;
};

const ConvCase kGradCases[] = {
    {"plain", {2, 3, 5, 6}, {4, 3, 3, 2}, {}, true, false},
    {"stride_pad_dilation", {1, 2, 7, 6}, {3, 2, 3, 2}, {{2, 1}, {1, 2}, {2, 1}, 1}, true, false},
    {"groups_no_bias", {1, 4, 6, 5}, {6, 2, 3, 3}, {{1, 1}, {1, 0}, {1, 1}, 2}, false, false},
    {"depthwise", {2, 3, 5, 5}, {3, 1, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 3}, true, false},
    {"odd_stride3", {1, 2, 7, 5}, {3, 2, 2, 3}, {{3, 2}, {1, 1}, {1, 1}, 1}, false, false},
    {"channels_last", {2, 3, 5, 4}, {2, 3, 3, 3}, {{1, 2}, {1, 1}, {1, 1}, 1}, true, true},
};

TEST(Conv2dTest, GradientsMatchFiniteDifferences) {
  for (const ConvCase& c : kGradCases) {
    SCOPED_TRACE(c.name);
    Generator gen(7);
    std::vector<Tensor> inputs = {randn(c.x, gen, DType::kF64), randn(c.w, gen, DType::kF64)};
    if (c.bias) inputs.push_back(randn({c.w[0]}, gen, DType::kF64));
    expect_gradients_match(
        [&](const std::vector<Tensor>& in) {
          Tensor x = c.channels_last ? to_channels_last(in[0]) : in[0];
          return conv2d(x, in[1], c.bias ? in[2] : Tensor(), c.p);
        },
        inputs);
  }
}

TEST(Conv2dTest, FirstLayerSkipsInputGradient) {
  Generator gen(3);
  Tensor x = randn({1, 2, 4, 4}, gen, DType::kF64);
  Tensor w = randn({3, 2, 3, 3}, gen, DType::kF64).set_requires_grad(true);
  conv2d(x, w, Tensor()).backward(Tensor::ones({1, 3, 2, 2}, DType::kF64));
  EXPECT_FALSE(x.grad().defined());
  ASSERT_TRUE(w.grad().defined());
}

// The cases cover each oneDNN layout choice (blocked, plain gemm, grouped and depthwise blocked,
// channels_last as given).
const ConvCase kLayoutCases[] = {
    {"blocked_3x3", {2, 16, 9, 9}, {8, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}, true, false},
    {"blocked_stride_dilation",
     {2, 16, 10, 11},
     {16, 16, 3, 3},
     {{2, 2}, {2, 2}, {2, 2}, 1},
     false,
     false},
    {"blocked_groups", {2, 16, 8, 8}, {8, 4, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 4}, true, false},
    {"plain_pointwise", {2, 8, 7, 7}, {12, 8, 1, 1}, {{2, 2}, {0, 0}, {1, 1}, 1}, true, false},
    {"plain_first_layer", {2, 3, 15, 15}, {8, 3, 7, 7}, {{2, 2}, {3, 3}, {1, 1}, 1}, false, false},
    {"depthwise", {2, 16, 9, 9}, {16, 1, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 16}, true, false},
    {"channels_last", {2, 16, 9, 9}, {8, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}, true, true},
    {"channels_last_depthwise",
     {2, 16, 9, 9},
     {16, 1, 3, 3},
     {{1, 1}, {1, 1}, {1, 1}, 16},
     false,
     true},
};

// Compares the oneDNN f32 forward and both backward passes of case `c` with the f64 loops.
void expect_f32_matches_f64(const ConvCase& c) {
  Generator gen(11);
  Tensor x = randn(c.x, gen), w = randn(c.w, gen);
  Tensor bias = c.bias ? randn({c.w[0]}, gen) : Tensor();
  if (c.channels_last) x = to_channels_last(x);
  Tensor out = ops::conv2d(x, w, bias, c.p);
  Tensor out64 = ops::conv2d(x.to(DType::kF64), w.to(DType::kF64),
                             c.bias ? bias.to(DType::kF64) : Tensor(), c.p);
  EXPECT_EQ(is_channels_last(out), c.channels_last);
  expect_all_close(out, out64, 1e-5);

  Tensor grad = randn(out.shape(), gen);
  if (c.channels_last) grad = to_channels_last(grad);
  Tensor grad64 = grad.to(DType::kF64);
  // f32 through the combined backward (one shared grad_out reorder), f64 through the separate ops.
  Conv2dGrads g = ops::conv2d_backward(grad, x, w, {true, true, c.bias}, c.p);
  Tensor grad_x64 = ops::conv2d_backward_input(grad64, w.to(DType::kF64), c.x, c.p);
  Conv2dGrads g64 = ops::conv2d_backward_weight(grad64, x.to(DType::kF64), c.w, c.bias, c.p);
  EXPECT_EQ(is_channels_last(g.input), c.channels_last);
  expect_all_close(g.input, grad_x64, 1e-5);
  expect_all_close(g.weight, g64.weight, 1e-5);
  if (c.bias) expect_all_close(g.bias, g64.bias, 1e-5);
  // And the f32 single-gradient entry points.
  expect_all_close(ops::conv2d_backward_input(grad, w, c.x, c.p), grad_x64, 1e-5);
  expect_all_close(ops::conv2d_backward_weight(grad, x, c.w, false, c.p).weight, g64.weight, 1e-5);
}

TEST(Conv2dTest, OneDnnF32MatchesF64DirectLoops) {
  for (const ConvCase& c : kLayoutCases) {
    SCOPED_TRACE(c.name);
    expect_f32_matches_f64(c);
  }
}

// Every case again through each layout that the heuristic may pick (the variable is read per call).
TEST(Conv2dTest, OneDnnF32MatchesF64InEveryForcedLayout) {
  for (const char* layout : {"plain", "blocked", "nhwc"}) {
    ASSERT_EQ(setenv("OMPQ_CONV_LAYOUT", layout, 1), 0);
    for (const ConvCase& c : kLayoutCases) {
      SCOPED_TRACE(std::string(layout) + " " + c.name);
      expect_f32_matches_f64(c);
    }
  }
  unsetenv("OMPQ_CONV_LAYOUT");
}

// Golden values from PyTorch 1.13 (torch.nn.functional.conv2d and autograd, float64) on pattern
// inputs: x = pattern(37, 23, 11) [1, 4, 5, 4], w = pattern(29, 17, 8) [6, 2, 3, 2],
// b = pattern(5, 7, 3) [6], grad = pattern(13, 11, 5) [1, 6, 3, 2]; stride (2, 1), padding (1, 0),
// dilation (1, 2), groups 2. The values are exact binary fractions: f64 must match to 1e-12 and
// f32 (oneDNN) to 1e-6.
TEST(Conv2dTest, MatchesPyTorchGolden) {
  const std::vector<double> y = {0.359375,  -0.9375,   1.234375, 1.734375, 0.40625,   -2.34375,
                                 -1.578125, 0.203125,  0.921875, 1.546875, -0.59375,  0.578125,
                                 0.921875,  -0.328125, 1.328125, -0.3125,  -0.609375, 0.765625,
                                 -1.40625,  1.265625,  2.9375,   0.703125, -0.828125, -1.40625,
                                 1.5625,    1.203125,  -0.0625,  1.546875, 0.25,      -0.484375,
                                 -1.125,    1.59375,   3.234375, 1.25,     -0.34375,  -1.234375};
  const std::vector<double> gw = {
      0.453125,  -0.71875,  0.625,    0.984375, 0.765625,  -0.21875, -0.84375,  -0.21875, 0.984375,
      0.984375,  -0.09375,  -0.71875, -1.34375, 0.53125,   1.203125, 0.8125,    0.6875,   -0.34375,
      0.515625,  0.59375,   0.890625, -0.21875, -0.28125,  -0.59375, -1.421875, 0.40625,  1.265625,
      0.984375,  0.609375,  -0.46875, 0.328125, 0.71875,   0.96875,  -0.390625, -0.46875, -0.46875,
      0.015625,  -0.859375, 0.875,    -0.875,   -0.40625,  0.625,    -0.109375, 0.8125,   -0.8125,
      -0.046875, -0.15625,  0.15625,  0.078125, -0.84375,  0.96875,  -1.03125,  -0.34375, 0.640625,
      0.203125,  0.71875,   -1.0625,  -0.1875,  0.15625,   0.0625,   0.484375,  -1.34375, -0.3125,
      0.53125,   0.578125,  0.65625,  0.171875, -0.578125, 0.578125, 0.703125,  0.640625, -0.71875};
  const std::vector<double> gx = {
      -0.265625, -0.140625, 0.671875,  0.328125,  -0.265625, -0.015625, 0.40625,   0.25,
      -0.015625, 0.109375,  -0.015625, -0.359375, 0.234375,  -0.890625, 0.09375,   0.28125,
      0.234375,  -0.5,      -0.703125, -0.1875,   0.046875,  0.015625,  -0.078125, -0.046875,
      0.84375,   0.25,      -0.34375,  0.25,      -0.015625, -0.046875, -0.015625, 0.015625,
      -0.34375,  -0.765625, 0.84375,   0.40625,   -0.078125, 0.578125,  0.046875,  -0.4375,
      -0.140625, 0.109375,  0.09375,   -0.125,    0.234375,  0.546875,  -0.765625, 0.53125,
      0.359375,  -0.25,     -0.34375,  -0.5625,   -0.515625, 0.3125,    1.3125,    0.203125,
      -0.515625, -0.265625, 0.421875,  0.203125,  0.203125,  -0.234375, -0.09375,  0.0625,
      -0.1875,   -0.34375,  0.140625,  0.4375,    -0.671875, 0.265625,  0.21875,   -0.3125,
      0.359375,  0.71875,   -0.46875,  0.34375,   0.859375,  0.421875,  -0.328125, -0.171875};
  const std::vector<double> gb = {0, -0.625, 0.125, -0.5, 0.25, -0.375};
  const Conv2dParams p{{2, 1}, {1, 0}, {1, 2}, 2};
  for (DType dtype : {DType::kF64, DType::kF32}) {
    SCOPED_TRACE(dtype_name(dtype));
    const double tol = dtype == DType::kF64 ? 1e-12 : 1e-6;
    Tensor x = pattern_tensor({1, 4, 5, 4}, 37, 23, 11).to(dtype).set_requires_grad(true);
    Tensor w = pattern_tensor({6, 2, 3, 2}, 29, 17, 8).to(dtype).set_requires_grad(true);
    Tensor b = pattern_tensor({6}, 5, 7, 3).to(dtype).set_requires_grad(true);
    Tensor out = conv2d(x, w, b, p);
    expect_all_close(out, Tensor::from_vector(y, {1, 6, 3, 2}), tol);
    out.backward(pattern_tensor({1, 6, 3, 2}, 13, 11, 5).to(dtype));
    expect_all_close(w.grad(), Tensor::from_vector(gw, {6, 2, 3, 2}), tol);
    expect_all_close(x.grad(), Tensor::from_vector(gx, {1, 4, 5, 4}), tol);
    expect_all_close(b.grad(), Tensor::from_vector(gb, {6}), tol);
  }
}

TEST(Conv2dTest, ChannelMismatchNamesOpAndShapes) {
  Tensor x = Tensor::zeros({1, 3, 8, 8}), w = Tensor::zeros({4, 2, 3, 3});
  EXPECT_THAT([&] { conv2d(x, w, Tensor()); },
              ::testing::ThrowsMessage<Error>(AllOf(HasSubstr("conv2d"), HasSubstr("[1, 3, 8, 8]"),
                                                    HasSubstr("[4, 2, 3, 3]"))));
}

TEST(Conv2dTest, GroupsMustDivideChannels) {
  Conv2dParams p;
  p.groups = 2;
  EXPECT_THAT(
      [&] {
        conv2d(Tensor::zeros({1, 3, 8, 8}), Tensor::zeros({4, 1, 3, 3}), Tensor(), p);
      },
      ::testing::ThrowsMessage<Error>(AllOf(HasSubstr("conv2d"), HasSubstr("groups=2"))));
  EXPECT_THAT(
      [&] {
        conv2d(Tensor::zeros({1, 4, 8, 8}), Tensor::zeros({3, 2, 3, 3}), Tensor(), p);
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("must divide")));
}

TEST(Conv2dTest, WrongRanksAreRejected) {
  EXPECT_THAT(
      [] {
        conv2d(Tensor::zeros({3, 8, 8}), Tensor::zeros({4, 3, 3, 3}), Tensor());
      },
      ::testing::ThrowsMessage<Error>(
          AllOf(HasSubstr("conv2d"), HasSubstr("[N, C, H, W]"), HasSubstr("[3, 8, 8]"))));
  EXPECT_THAT(
      [] {
        conv2d(Tensor::zeros({1, 3, 8, 8}), Tensor::zeros({4, 27}), Tensor());
      },
      ::testing::ThrowsMessage<Error>(AllOf(HasSubstr("weight"), HasSubstr("[4, 27]"))));
}

TEST(Conv2dTest, KernelLargerThanPaddedInputIsRejected) {
  Conv2dParams p;
  p.padding = {1, 1};
  EXPECT_THAT(
      [&] {
        conv2d(Tensor::zeros({1, 2, 3, 3}), Tensor::zeros({2, 2, 6, 3}), Tensor(), p);
      },
      ::testing::ThrowsMessage<Error>(
          AllOf(HasSubstr("larger than the padded input"), HasSubstr("[2, 2, 6, 3]"))));
  p.padding = {0, 0};
  p.dilation = {1, 3};
  EXPECT_THAT(
      [&] {
        conv2d(Tensor::zeros({1, 2, 5, 5}), Tensor::zeros({2, 2, 3, 3}), Tensor(), p);
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("dilated extent 7")));
}

TEST(Conv2dTest, BadBiasAndParamsAreRejected) {
  Tensor x = Tensor::zeros({1, 2, 5, 5}), w = Tensor::zeros({4, 2, 3, 3});
  EXPECT_THAT(
      [&] { conv2d(x, w, Tensor::zeros({3})); },
      ::testing::ThrowsMessage<Error>(AllOf(HasSubstr("bias of shape [3]"), HasSubstr("[4]"))));
  Conv2dParams p;
  p.stride = {0, 1};
  EXPECT_THAT([&] { conv2d(x, w, Tensor(), p); },
              ::testing::ThrowsMessage<Error>(HasSubstr("stride must be positive")));
  EXPECT_THAT([&] { conv2d(x, w.to(DType::kF64), Tensor()); },
              ::testing::ThrowsMessage<Error>(HasSubstr("dtype mismatch")));
}

TEST(Conv2dTest, BackwardRejectsBadArguments) {
  Tensor x = Tensor::zeros({1, 2, 5, 5}), w = Tensor::zeros({4, 2, 3, 3});
  EXPECT_THAT(
      [&] {
        ops::conv2d_backward(Tensor::zeros({1, 4, 5, 5}), x, w, {true, true, false}, {});
      },
      ::testing::ThrowsMessage<Error>(AllOf(HasSubstr("conv2d_backward"),
                                            HasSubstr("grad_out of shape [1, 4, 5, 5]"),
                                            HasSubstr("[1, 4, 3, 3]"))));
  EXPECT_THAT(
      [&] {
        ops::conv2d_backward(Tensor::zeros({1, 4, 3, 3}), x, w, {true, false, true}, {});
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("comes with the weight gradient")));
}

}  // namespace
}  // namespace ompq
