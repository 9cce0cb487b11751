// Initializers: torch's fan computation and gains, uniform bounds, normal statistics, and the
// default initialization of Conv2d, Linear and BatchNorm2d.
#include "layers/init.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/norm.h"

namespace ompq::nn::init {
namespace {

using ::testing::HasSubstr;

struct Stats {
  double min, max, mean, std;
};

Stats stats_of(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  Stats s{*std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()), 0, 0};
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  double sq = 0;
  for (double x : v) sq += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(sq / v.size());
  return s;
}

TEST(InitTest, FanInAndFanOutFollowTorch) {
  using Fans = std::pair<int64_t, int64_t>;
  EXPECT_EQ(calculate_fan_in_and_fan_out(Tensor::empty({64, 32, 3, 5})), Fans(32 * 15, 64 * 15));
  EXPECT_EQ(calculate_fan_in_and_fan_out(Tensor::empty({10, 7})), Fans(7, 10));
  EXPECT_THAT([] { calculate_fan_in_and_fan_out(Tensor::empty({10})); },
              ::testing::ThrowsMessage<Error>(HasSubstr("fewer than 2 dimensions")));
}

TEST(InitTest, GainsFollowTorch) {
  EXPECT_DOUBLE_EQ(calculate_gain(Nonlinearity::kLinear), 1.0);
  EXPECT_DOUBLE_EQ(calculate_gain(Nonlinearity::kTanh), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(calculate_gain(Nonlinearity::kRelu), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(calculate_gain(Nonlinearity::kLeakyRelu, std::sqrt(5.0)), std::sqrt(1.0 / 3.0));
  EXPECT_DOUBLE_EQ(calculate_gain(Nonlinearity::kLeakyRelu), std::sqrt(2.0 / (1 + 1e-4)));
}

TEST(InitTest, UniformStaysInBoundsAndFillsThem) {
  Generator gen(1);
  Tensor t = Tensor::empty({20000});
  uniform_(t, -0.3, 0.7, gen);
  Stats s = stats_of(t);
  EXPECT_GE(s.min, -0.3);
  EXPECT_LT(s.max, 0.7);
  EXPECT_LT(s.min, -0.29);
  EXPECT_GT(s.max, 0.69);
  EXPECT_NEAR(s.mean, 0.2, 0.01);
  EXPECT_NEAR(s.std, 1.0 / std::sqrt(12.0), 0.005);
}

TEST(InitTest, KaimingUniformBoundMatchesTorch) {
  // torch: bound = gain * sqrt(3 / fan); fan_in = 16 * 9; relu gain sqrt(2).
  Generator gen(2);
  Tensor w = Tensor::empty({32, 16, 3, 3});
  kaiming_uniform_(w, 0.0, FanMode::kFanIn, Nonlinearity::kRelu, gen);
  double bound = std::sqrt(2.0) * std::sqrt(3.0 / 144.0);
  Stats s = stats_of(w);
  EXPECT_GE(s.min, -bound);
  EXPECT_LE(s.max, bound);
  EXPECT_GT(s.max, 0.98 * bound);
  EXPECT_NEAR(s.std, bound / std::sqrt(3.0), 0.02 * bound);
}

TEST(InitTest, KaimingNormalStdMatchesTorchForBothFanModes) {
  // 73728 draws: the sample std's standard error is 0.26%, the tolerance 1.5%.
  Generator gen(3);
  Tensor w = Tensor::empty({128, 64, 3, 3});
  kaiming_normal_(w, 0.0, FanMode::kFanOut, Nonlinearity::kRelu, gen);
  Stats s = stats_of(w);
  const double std_out = std::sqrt(2.0 / (128 * 9)), std_in = std::sqrt(2.0 / (64 * 9));
  EXPECT_NEAR(s.mean, 0.0, 0.01 * std_out);
  EXPECT_NEAR(s.std, std_out, 0.015 * std_out);
  kaiming_normal_(w, 0.0, FanMode::kFanIn, Nonlinearity::kRelu, gen);
  EXPECT_NEAR(stats_of(w).std, std_in, 0.015 * std_in);
}

TEST(InitTest, NormalAndConstants) {
  Generator gen(4);
  Tensor t = Tensor::empty({40000}, DType::kF64);
  normal_(t, 1.5, 0.25, gen);
  Stats s = stats_of(t);
  EXPECT_NEAR(s.mean, 1.5, 0.005);
  EXPECT_NEAR(s.std, 0.25, 0.005);
  zeros_(t);
  EXPECT_EQ(stats_of(t).max, 0.0);
  ones_(t);
  EXPECT_EQ(stats_of(t).min, 1.0);
  constant_(t, -2.0);
  EXPECT_EQ(stats_of(t).max, -2.0);
}

TEST(InitTest, SameSeedSameWeights) {
  Generator a(9), b(9);
  EXPECT_EQ(Conv2d(3, 8, {3, 3}, {}, true, a).weight().to_vector<float>(),
            Conv2d(3, 8, {3, 3}, {}, true, b).weight().to_vector<float>());
}

TEST(InitTest, BadArguments) {
  Tensor t = Tensor::empty({4, 4});
  EXPECT_THAT([&] { uniform_(t, 1.0, 0.0); },
              ::testing::ThrowsMessage<Error>(HasSubstr("low 1 > high 0")));
  EXPECT_THAT([&] { normal_(t, 0.0, -1.0); },
              ::testing::ThrowsMessage<Error>(HasSubstr("negative std")));
  EXPECT_THAT(
      [] {
        kaiming_uniform_(Tensor::empty({4, 0}));
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("zero fan")));
  EXPECT_THAT([] { uniform_(Tensor::empty({4}, DType::kI32), 0, 1); },
              ::testing::ThrowsMessage<Error>(HasSubstr("not floating")));
}

// ---- default initialization of layers (torch.nn's reset_parameters)
// ---------------------------------

TEST(DefaultInitTest, Conv2dWeightAndBiasBoundsAre1OverSqrtFanIn) {
  Generator gen(5);
  Conv2d conv(8, 64, {3, 3}, {}, true, gen);  // fan_in 72
  double bound = 1.0 / std::sqrt(72.0);
  Stats w = stats_of(conv.weight());
  EXPECT_GE(w.min, -bound);
  EXPECT_LE(w.max, bound);
  EXPECT_GT(w.max, 0.95 * bound);
  EXPECT_NEAR(w.std, bound / std::sqrt(3.0), 0.05 * bound);
  Stats b = stats_of(conv.bias());
  EXPECT_GE(b.min, -bound);
  EXPECT_LE(b.max, bound);

  Conv2d grouped(8, 16, {3, 3}, Conv2dParams{{1, 1}, {1, 1}, {1, 1}, 4}, false, gen);
  EXPECT_EQ(grouped.weight().shape(), (Shape{16, 2, 3, 3}));
  EXPECT_FALSE(grouped.bias().defined());
  EXPECT_LE(stats_of(grouped.weight()).max, 1.0 / std::sqrt(18.0));
  EXPECT_EQ(grouped.named_parameters().size(), 1u);
}

TEST(DefaultInitTest, LinearBoundsAre1OverSqrtIn) {
  Generator gen(6);
  Linear fc(100, 50, true, gen);
  Stats w = stats_of(fc.weight());
  EXPECT_GE(w.min, -0.1);
  EXPECT_LE(w.max, 0.1);
  EXPECT_GT(w.max, 0.099);
  Stats b = stats_of(fc.bias());
  EXPECT_GE(b.min, -0.1);
  EXPECT_LE(b.max, 0.1);
}

TEST(DefaultInitTest, BatchNormStartsAsIdentity) {
  BatchNorm2d bn(3);
  EXPECT_EQ(bn.weight().to_vector<float>(), (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(bn.bias().to_vector<float>(), (std::vector<float>{0, 0, 0}));
  EXPECT_EQ(bn.running_mean().to_vector<float>(), (std::vector<float>{0, 0, 0}));
  EXPECT_EQ(bn.running_var().to_vector<float>(), (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(bn.num_batches_tracked().item<int64_t>(), 0);
  BatchNorm2d plain(3, BatchNormOptions{1e-5, 0.1, /*affine=*/false});
  EXPECT_TRUE(plain.named_parameters().empty());
  EXPECT_EQ(plain.named_buffers().size(), 3u);
}

}  // namespace
}  // namespace ompq::nn::init
