// AdaRound ops: the rectified sigmoid and its derivative, the init that reproduces each weight's
// position between grid points, soft and hard rounding against their definitions, the regularizer,
// finite-difference gradients (f64) and bad arguments.
#include "core/functional/adaround.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/ops/adaround.h"
#include "core/ops/adaround_math.h"
#include "core/ops/elementwise.h"
#include "core/random.h"
#include "tests/gradcheck.h"

namespace ompq {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

TEST(AdaRoundMath, RectifiedSigmoidStretchesAndClips) {
  EXPECT_DOUBLE_EQ(rectified_sigmoid(0.0), 0.5);
  EXPECT_DOUBLE_EQ(rectified_sigmoid(10.0), 1.0);  // 1.2 * sigmoid(10) - 0.1 > 1
  EXPECT_DOUBLE_EQ(rectified_sigmoid(-10.0), 0.0);
  EXPECT_NEAR(rectified_sigmoid(1.0), 1.2 / (1 + std::exp(-1.0)) - 0.1, 1e-15);
  // Derivative: central differences inside, 0 where clipped.
  for (double a : {-2.0, -0.7, 0.0, 0.3, 1.9}) {
    const double eps = 1e-6;
    const double numerical = (rectified_sigmoid(a + eps) - rectified_sigmoid(a - eps)) / (2 * eps);
    EXPECT_NEAR(rectified_sigmoid_grad(a), numerical, 1e-8) << a;
  }
  EXPECT_EQ(rectified_sigmoid_grad(8.0), 0.0);
  EXPECT_EQ(rectified_sigmoid_grad(-8.0), 0.0);
  // The regularizer term: 1 at h = 1/2, 0 at h in {0, 1}; its derivative by central differences.
  EXPECT_DOUBLE_EQ(adaround_regularizer_term(0.0, 20.0), 1.0);
  EXPECT_DOUBLE_EQ(adaround_regularizer_term(9.0, 2.0), 0.0);
  for (double beta : {2.0, 7.5, 20.0}) {
    for (double a : {-1.5, -0.2, 0.4, 2.0}) {
      const double eps = 1e-6;
      const double numerical =
          (adaround_regularizer_term(a + eps, beta) - adaround_regularizer_term(a - eps, beta)) /
          (2 * eps);
      EXPECT_NEAR(adaround_regularizer_grad(a, beta), numerical, 1e-7) << a << " " << beta;
    }
  }
}

TEST(AdaRoundOps, InitReproducesEachWeightsPositionBetweenGridPoints) {
  Generator gen(1);
  const Tensor w = randn({3, 4, 2, 2}, gen, DType::kF64);
  const std::vector<double> s = {0.05, 0.21, 0.4};
  const Tensor scale = Tensor::from_vector(s, {3});
  const Tensor zero = Tensor::from_vector(std::vector<double>{7, 3, 1}, {3});
  const Tensor alpha = ops::adaround_init(w, scale, 0);
  const std::vector<double> wv = w.to_vector<double>(), av = alpha.to_vector<double>();
  const std::vector<double> soft =
      ops::adaround_quantize(w, alpha, scale, zero, 0, {0, 15}, false).to_vector<double>();
  const std::vector<double> hard =
      ops::adaround_quantize(w, alpha, scale, zero, 0, {0, 15}, true).to_vector<double>();
  const std::vector<double> nearest =
      ops::fake_quantize(w, scale, zero, 0, {0, 15}).to_vector<double>();
  const std::vector<double> zv = zero.to_vector<double>();
  for (size_t i = 0; i < wv.size(); ++i) {
    const int64_t c = static_cast<int64_t>(i) / 16;
    const double v = wv[i] / s[c];
    EXPECT_NEAR(rectified_sigmoid(av[i]), v - std::floor(v), 1e-12) << i;
    // Soft rounding at the init gives the weight back wherever its code is inside the range.
    const double code = std::floor(v) + zv[c];
    if (code >= 0 && code + 1 <= 15) {
      EXPECT_NEAR(soft[i], wv[i], 1e-12) << i;
    }
    // Hard rounding at the init is rounding to nearest (no exact ties in random data).
    EXPECT_DOUBLE_EQ(hard[i], nearest[i]) << i;
  }
}

TEST(AdaRoundOps, HardRoundingLandsOnGridPointsAndSoftMatchesItsDefinition) {
  Generator gen(2);
  const Tensor w = randn({5, 7}, gen);
  const Tensor alpha = ops::mul(randn({5, 7}, gen), 3.0);
  const Tensor scale = Tensor::scalar(0.3);
  const Tensor zero = Tensor::scalar(2.0);
  const std::vector<float> wv = w.to_vector<float>(), av = alpha.to_vector<float>();
  const std::vector<float> hard =
      ops::adaround_quantize(w, alpha, scale, zero, std::nullopt, {0, 7}, true).to_vector<float>();
  const std::vector<float> soft =
      ops::adaround_quantize(w, alpha, scale, zero, std::nullopt, {0, 7}, false).to_vector<float>();
  for (size_t i = 0; i < wv.size(); ++i) {
    const float code = hard[i] / 0.3f + 2.0f;
    EXPECT_NEAR(code, std::nearbyint(code), 1e-4) << i;
    EXPECT_GE(std::nearbyint(code), 0);
    EXPECT_LE(std::nearbyint(code), 7);
    // Up exactly where alpha >= 0 (unless clamped at the range's ends).
    const float down = std::floor(wv[i] / 0.3f) + 2.0f;
    const float expected_code = std::min(7.0f, std::max(0.0f, down + (av[i] >= 0 ? 1.0f : 0.0f)));
    EXPECT_FLOAT_EQ(hard[i], (expected_code - 2.0f) * 0.3f) << i;
    const float h = 1.2f / (1 + std::exp(-av[i])) - 0.1f;
    const float soft_code =
        std::min(7.0f, std::max(0.0f, down + std::min(1.0f, std::max(0.0f, h))));
    EXPECT_NEAR(soft[i], (soft_code - 2.0f) * 0.3f, 1e-6) << i;
  }
}

TEST(AdaRoundOps, RegularizerIsTheSumOfItsTerms) {
  Generator gen(3);
  const Tensor alpha = ops::mul(randn({20000}, gen, DType::kF64), 2.0);  // several blocks
  double expected = 0;
  for (double a : alpha.to_vector<double>()) {
    const double h = std::min(1.0, std::max(0.0, 1.2 / (1 + std::exp(-a)) - 0.1));
    expected += 1 - std::pow(std::fabs(2 * h - 1), 6.5);
  }
  EXPECT_NEAR(ops::adaround_regularizer(alpha, 6.5).item<double>(), expected, 1e-9);
}

TEST(AdaRoundGrad, SoftRoundingPerChannelWithZeroPoint) {
  Generator gen(4);
  // Codes well inside [0, 15] and |alpha| < 2 (no clamping), so that the function is smooth.
  const Tensor w = ops::mul(rand({3, 2, 2, 2}, gen, DType::kF64), 0.5);
  const Tensor alpha = ops::sub(ops::mul(rand({3, 2, 2, 2}, gen, DType::kF64), 3.0), 1.5);
  const Tensor scale = Tensor::from_vector(std::vector<double>{0.1, 0.2, 0.15}, {3});
  const Tensor zero = Tensor::from_vector(std::vector<double>{4, 5, 6}, {3});
  testing::GradcheckOptions options;
  options.check = {false, true, false, false};
  testing::expect_gradients_match(
      [](const std::vector<Tensor>& x) {
        return adaround_quantize(x[0], x[1], x[2], x[3], 0, {0, 15});
      },
      {w, alpha, scale, zero}, options);
}

TEST(AdaRoundGrad, SoftRoundingPerTensorAndClamped) {
  Generator gen(5);
  // Per tensor, symmetric; some weights are far outside the range, where alpha gets no gradient.
  const Tensor w = ops::mul(randn({4, 6}, gen, DType::kF64), 2.0);
  const Tensor alpha = ops::sub(ops::mul(rand({4, 6}, gen, DType::kF64), 3.0), 1.5);
  testing::GradcheckOptions options;
  options.check = {false, true};
  testing::expect_gradients_match(
      [](const std::vector<Tensor>& x) {
        return adaround_quantize(x[0], x[1], Tensor::scalar(0.25, DType::kF64), Tensor(),
                                 std::nullopt, {-4, 3});
      },
      {w, alpha}, options);
}

TEST(AdaRoundGrad, Regularizer) {
  Generator gen(6);
  for (double beta : {2.0, 5.0, 20.0}) {
    const Tensor alpha = ops::sub(ops::mul(rand({3, 5}, gen, DType::kF64), 4.0), 2.0);
    testing::expect_gradients_match(
        [beta](const std::vector<Tensor>& x) { return adaround_regularizer(x[0], beta); }, {alpha});
  }
}

TEST(AdaRoundGrad, HardRoundingRecordsNothing) {
  const Tensor w = Tensor::full({4}, 0.3);
  const Tensor alpha = Tensor::zeros({4}).set_requires_grad(true);
  EXPECT_FALSE(adaround_quantize(w, alpha, Tensor::scalar(0.1), Tensor(), std::nullopt, {0, 15},
                                 /*hard=*/true)
                   .requires_grad());
  EXPECT_TRUE(adaround_quantize(w, alpha, Tensor::scalar(0.1), Tensor(), std::nullopt, {0, 15})
                  .requires_grad());
}

TEST(AdaRoundOps, BadArguments) {
  const Tensor w = Tensor::zeros({4, 3});
  const Tensor scale = Tensor::full({4}, 0.1);
  EXPECT_THAT(
      [&] {
        ops::adaround_quantize(w, Tensor::zeros({3, 4}), scale, Tensor(), 0, {0, 3}, false);
      },
      ThrowsMessage<Error>(
          HasSubstr("adaround_quantize: alpha of shape [3, 4] for a weight of shape [4, 3]")));
  EXPECT_THAT([&] { ops::adaround_init(w, Tensor::full({3}, 0.1), 0); },
              ThrowsMessage<Error>(HasSubstr("adaround_init: per-channel scale of shape [3]")));
  EXPECT_THAT(
      [&] {
        ops::adaround_quantize(w, Tensor::zeros({4, 3}, DType::kF64), scale, Tensor(), 0, {0, 3},
                               false);
      },
      ThrowsMessage<Error>(HasSubstr("adaround_quantize")));
  EXPECT_THAT(
      [&] {
        ops::adaround_quantize(w, Tensor::zeros({4, 3}), scale, Tensor(), 0, {3, 3}, false);
      },
      ThrowsMessage<Error>(HasSubstr("adaround_quantize: empty code range [3, 3]")));
  EXPECT_THAT([&] { ops::adaround_regularizer(w, 0.5); },
              ThrowsMessage<Error>(HasSubstr("adaround_regularizer: beta 0.5 (expected >= 1)")));
  EXPECT_THAT([&] { ops::adaround_regularizer_backward(Tensor::zeros({2}), w, 2.0); },
              ThrowsMessage<Error>(HasSubstr(
                  "adaround_regularizer_backward: gradient of shape [2] (expected one element)")));
}

}  // namespace
}  // namespace ompq
