// Max, average and adaptive average pooling: f64 finite-difference gradients (padding, strides
// unlike kernels, non-divisible adaptive sizes), PyTorch 1.13 golden values in f32 and f64, and
// bad inputs.
#include "core/functional/pool.h"

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

const Pool2dParams kPadded{{3, 2}, {2, 3}, {1, 1}};
const Pool2dParams kOverlapping{{3, 3}, {1, 2}, {0, 1}};

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

TEST(Pool2dTest, NanPropagatesThroughMax) {
  Tensor x = Tensor::from_vector(std::vector<float>{1, NAN, 3, 4}, {1, 1, 2, 2});
  EXPECT_TRUE(std::isnan(max_pool2d(x, Pool2dParams{}).item<float>()));
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
