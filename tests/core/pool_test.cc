// Max, average and adaptive average pooling: f64 finite-difference gradients (padding, strides
// unlike kernels, non-divisible adaptive sizes), PyTorch 1.13 golden values in f32 and f64,
// channels_last against NCHW (values, layouts, gradients), and bad inputs.
#include "core/functional/pool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops/conv.h"
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

const Pool2dParams kPadded{{3, 2}, {2, 3}, {1, 1}};
const Pool2dParams kOverlapping{{3, 3}, {1, 2}, {0, 1}};
const Pool2dParams kResNetStem{{3, 3}, {2, 2}, {1, 1}};

// The same values in channels_last memory (autograd-aware: gradients flow back to t).
Tensor to_channels_last(const Tensor& t) {
  return t.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
}

void expect_same_values(const Tensor& actual, const Tensor& expected, const std::string& what) {
  ASSERT_EQ(actual.shape(), expected.shape()) << what;
  EXPECT_TRUE(actual.to_vector<double>() == expected.to_vector<double>()) << what;
}

// An identity op whose backward rule keeps the gradient that reaches it in *seen.
Tensor grad_probe(const Tensor& x, Tensor* seen) {
  return record(x.detach(), {x}, "GradProbe", [seen](const Tensor& grad) {
    *seen = grad;
    return std::vector<Tensor>{grad};
  });
}

TEST(MaxPool2dTest, GradientsMatchFiniteDifferences) {
  Generator gen(21);
  for (const Pool2dParams& p : {kPadded, kOverlapping, Pool2dParams{}}) {
    expect_gradients_match([&](const std::vector<Tensor>& in) { return max_pool2d(in[0], p); },
                           {randn({2, 3, 5, 7}, gen, DType::kF64)});
  }
}

TEST(AvgPool2dTest, GradientsMatchFiniteDifferences) {
  Generator gen(22);
  for (const Pool2dParams& p : {kPadded, kOverlapping, Pool2dParams{}}) {
    expect_gradients_match([&](const std::vector<Tensor>& in) { return avg_pool2d(in[0], p); },
                           {randn({2, 3, 5, 7}, gen, DType::kF64)});
  }
}

TEST(AdaptiveAvgPool2dTest, GradientsMatchFiniteDifferences) {
  Generator gen(23);
  // Non-divisible (overlapping bins), upsampling (bins repeat input pixels) and global.
  for (std::array<int64_t, 2> size : {std::array<int64_t, 2>{3, 4}, {7, 9}, {1, 1}}) {
    expect_gradients_match(
        [&](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], size); },
        {randn({2, 2, 5, 7}, gen, DType::kF64)});
  }
}

// Golden values from PyTorch 1.13 (float64) on x = pattern(31, 19, 9) [1, 2, 5, 7] (see
// golden_inputs.h): max_pool2d and avg_pool2d with kernel (3, 2), stride (2, 3), padding (1, 1),
// and adaptive_avg_pool2d to (3, 4). The pattern has ties, so the max indices also check that the
// first maximum wins, as in PyTorch.
TEST(Pool2dTest, MatchesPyTorchGolden) {
  const std::vector<double> max = {-0.125, 1,    0.75, 0.875, 0.625, 0.375, 0.5,  1.125, 0.875,
                                   0.125,  0.75, 1,    1.125, 0.875, 0.625, 0.75, 0.5,   1.125};
  const std::vector<int64_t> max_index = {7, 3, 6, 14, 17, 20, 28, 30, 33,
                                          7, 9, 6, 14, 17, 20, 28, 31, 33};
  const std::vector<double> avg = {-0.2083333333,  0.1041666667, -0.0625, 0.04166666667,
                                   -0.125,         -0.375,       0,       0.125,
                                   -0.04166666667, -0.125,       -0.125,  0.1041666667,
                                   0.1666666667,   0.125,        -0.125,  0.08333333333,
                                   -0.1041666667,  0.125};
  const std::vector<double> adaptive = {-0.46875,
                                        0,
                                        0.2291666667,
                                        -0.09375,
                                        0.04166666667,
                                        -0.08333333333,
                                        0.01388888889,
                                        -0.375,
                                        0.15625,
                                        0.2291666667,
                                        0.0625,
                                        -0.0625,
                                        -0.21875,
                                        -0.1458333333,
                                        -0.3125,
                                        0.15625,
                                        -0.1041666667,
                                        -0.09722222222,
                                        0,
                                        -0.125,
                                        -0.1875,
                                        -0.3125,
                                        0.3125,
                                        0.1875};
  for (DType dtype : {DType::kF64, DType::kF32}) {
    SCOPED_TRACE(dtype_name(dtype));
    Tensor x = pattern_tensor({1, 2, 5, 7}, 31, 19, 9).to(dtype);
    ops::MaxPool2dResult r = ops::max_pool2d(x, kPadded);
    expect_all_close(r.output, Tensor::from_vector(max, {1, 2, 3, 3}), 1e-7);
    EXPECT_EQ(r.indices.to_vector<int64_t>(), max_index);
    expect_all_close(avg_pool2d(x, kPadded), Tensor::from_vector(avg, {1, 2, 3, 3}), 1e-7);
    expect_all_close(adaptive_avg_pool2d(x, {3, 4}), Tensor::from_vector(adaptive, {1, 2, 3, 4}),
                     1e-7);
  }
}

// The NHWC kernels against the NCHW ones on the same values. Both meet each window in row-major
// order and scatter each input pixel's gradient in output order, so max values and indices and
// every backward pass are the same bits; the average forward sums a window in a different order
// (rtol 1e-6 in f32). Channel counts below, at and off the vector width.
TEST(Pool2dTest, ChannelsLastMatchesNchw) {
  Generator gen(24);
  for (DType dtype : {DType::kF64, DType::kF32}) {
    for (Shape shape : {Shape{2, 3, 9, 11}, Shape{3, 16, 8, 8}, Shape{2, 21, 7, 6}}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + shape_str(shape));
      const Tensor x = randn(shape, gen, dtype), x_cl = to_channels_last(x);
      for (const Pool2dParams& p : {kPadded, kOverlapping, kResNetStem, Pool2dParams{}}) {
        const ops::MaxPool2dResult max = ops::max_pool2d(x, p), max_cl = ops::max_pool2d(x_cl, p);
        EXPECT_TRUE(is_channels_last(max_cl.output));
        EXPECT_TRUE(is_channels_last(max_cl.indices));
        expect_same_values(max_cl.output, max.output, "max output");
        EXPECT_EQ(max_cl.indices.to_vector<int64_t>(), max.indices.to_vector<int64_t>());
        const Tensor grad = randn(max.output.shape(), gen, dtype);
        const Tensor max_grad = ops::max_pool2d_backward(grad, max.indices, shape);
        // grad_out in either layout; grad_x takes the layout asked for.
        for (const Tensor& grad_any : {to_channels_last(grad), grad}) {
          const Tensor max_grad_cl =
              ops::max_pool2d_backward(grad_any, max_cl.indices, shape, /*channels_last=*/true);
          EXPECT_TRUE(is_channels_last(max_grad_cl));
          expect_same_values(max_grad_cl, max_grad, "max grad");
        }

        const Tensor avg_cl = ops::avg_pool2d(x_cl, p);
        EXPECT_TRUE(is_channels_last(avg_cl));
        expect_all_close(avg_cl, ops::avg_pool2d(x, p), 1e-6);
        const Tensor avg_grad_cl =
            ops::avg_pool2d_backward(to_channels_last(grad), shape, p, /*channels_last=*/true);
        EXPECT_TRUE(is_channels_last(avg_grad_cl));
        expect_same_values(avg_grad_cl, ops::avg_pool2d_backward(grad, shape, p), "avg grad");
      }
      for (std::array<int64_t, 2> size : {std::array<int64_t, 2>{3, 4}, {7, 9}, {1, 1}}) {
        const Tensor out_cl = ops::adaptive_avg_pool2d(x_cl, size);
        EXPECT_TRUE(is_channels_last(out_cl) || size[0] * size[1] == 1);
        expect_all_close(out_cl, ops::adaptive_avg_pool2d(x, size), 1e-6);
        const Tensor grad = randn(out_cl.shape(), gen, dtype);
        const Tensor grad_cl = ops::adaptive_avg_pool2d_backward(to_channels_last(grad), shape,
                                                                 /*channels_last=*/true);
        EXPECT_TRUE(is_channels_last(grad_cl));
        expect_same_values(grad_cl, ops::adaptive_avg_pool2d_backward(grad, shape),
                           "adaptive grad");
      }
    }
  }
}

TEST(Pool2dTest, ChannelsLastGradientsMatchFiniteDifferences) {
  Generator gen(25);
  for (const Pool2dParams& p : {kPadded, kResNetStem}) {
    expect_gradients_match(
        [&](const std::vector<Tensor>& in) { return max_pool2d(to_channels_last(in[0]), p); },
        {randn({2, 3, 5, 7}, gen, DType::kF64)});
    expect_gradients_match(
        [&](const std::vector<Tensor>& in) { return avg_pool2d(to_channels_last(in[0]), p); },
        {randn({2, 3, 5, 7}, gen, DType::kF64)});
  }
  for (std::array<int64_t, 2> size : {std::array<int64_t, 2>{3, 4}, {1, 1}}) {
    expect_gradients_match(
        [&](const std::vector<Tensor>& in) {
          return adaptive_avg_pool2d(to_channels_last(in[0]), size);
        },
        {randn({2, 3, 5, 7}, gen, DType::kF64)});
  }
}

// The autograd rules hand back the input gradient in the input's layout, also where the output
// (a global pool's [N, C, 1, 1]) cannot tell it.
TEST(Pool2dTest, ChannelsLastInputGetsChannelsLastGradient) {
  Generator gen(26);
  const Tensor x = randn({2, 4, 6, 6}, gen);
  const std::vector<std::function<Tensor(const Tensor&)>> pools = {
      [](const Tensor& t) { return max_pool2d(t, kResNetStem); },
      [](const Tensor& t) { return avg_pool2d(t, kPadded); },
      [](const Tensor& t) {
        return adaptive_avg_pool2d(t, {1, 1});
      }};
  for (bool channels_last : {true, false}) {
    for (const auto& pool : pools) {
      Tensor leaf = x.clone();
      leaf.set_requires_grad(true);
      Tensor seen;
      Tensor in = grad_probe(channels_last ? to_channels_last(leaf) : leaf, &seen);
      ASSERT_EQ(is_channels_last(in), channels_last);
      Tensor y = pool(in);
      y.backward(Tensor::ones(y.shape()));
      ASSERT_TRUE(seen.defined());
      EXPECT_EQ(is_channels_last(seen), channels_last);
      EXPECT_EQ(seen.is_contiguous(), !channels_last);
    }
  }
}

TEST(Pool2dTest, NanPropagatesThroughMax) {
  Tensor x = Tensor::from_vector(std::vector<float>{1, NAN, 3, 4}, {1, 1, 2, 2});
  EXPECT_TRUE(std::isnan(max_pool2d(x, Pool2dParams{}).item<float>()));
  // channels_last: a NaN in one channel leaves the other alone.
  Tensor two = to_channels_last(
      Tensor::from_vector(std::vector<float>{1, NAN, 3, 4, 1, 2, 5, 4}, {1, 2, 2, 2}));
  ops::MaxPool2dResult r = ops::max_pool2d(two, Pool2dParams{});
  std::vector<float> v = r.output.to_vector<float>();
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(v[1], 5);
  EXPECT_EQ(r.indices.to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));
}

TEST(Pool2dTest, WrongRankIsRejected) {
  EXPECT_THAT(
      [] {
        max_pool2d(Tensor::zeros({3, 8, 8}), Pool2dParams{});
      },
      ::testing::ThrowsMessage<Error>(
          AllOf(HasSubstr("max_pool2d"), HasSubstr("[N, C, H, W]"), HasSubstr("[3, 8, 8]"))));
  EXPECT_THAT(
      [] {
        adaptive_avg_pool2d(Tensor::zeros({8, 8}), {2, 2});
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("adaptive_avg_pool2d")));
}

TEST(Pool2dTest, KernelLargerThanPaddedInputIsRejected) {
  const Pool2dParams p{{5, 5}, {1, 1}, {1, 1}};
  EXPECT_THAT(
      [&] {
        avg_pool2d(Tensor::zeros({1, 1, 2, 6}), p);
      },
      ::testing::ThrowsMessage<Error>(AllOf(HasSubstr("avg_pool2d"),
                                            HasSubstr("larger than the padded input"),
                                            HasSubstr("[1, 1, 2, 6]"))));
}

TEST(Pool2dTest, BadWindowParametersAreRejected) {
  EXPECT_THAT(
      [] {
        max_pool2d(Tensor::zeros({1, 1, 8, 8}), Pool2dParams{{2, 2}, {2, 2}, {2, 0}});
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("at most half of the kernel")));
  EXPECT_THAT(
      [] {
        max_pool2d(Tensor::zeros({1, 1, 8, 8}), Pool2dParams{{2, 2}, {0, 2}, {0, 0}});
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("must be positive")));
  EXPECT_THAT(
      [] {
        adaptive_avg_pool2d(Tensor::zeros({1, 1, 8, 8}), {0, 2});
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("output size must be positive")));
}

}  // namespace
}  // namespace ompq
