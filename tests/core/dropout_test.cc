// dropout: the mask is exactly the documented Philox draw, its statistics, scaling, determinism,
// identity in eval, the f64 gradient with a fixed generator, and bad probabilities.
#include "core/functional/dropout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "core/autograd.h"
#include "core/ops/dropout_math.h"
#include "core/philox.h"
#include "core/random.h"
#include "tests/gradcheck.h"

namespace ompq {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

TEST(Dropout, MaskIsThePhiloxDrawAtTheGeneratorsOffset) {
  Generator gen(42);
  gen.advance(1003);  // the draw starts where the generator stands, mid Philox block
  Tensor x = Tensor::arange(5001, DType::kF64);
  Tensor y = dropout(x, 0.3, /*training=*/true, gen);
  EXPECT_EQ(gen.offset(), 6004u);
  std::vector<double> v = y.to_vector<double>();
  for (int64_t i = 0; i < 5001; ++i) {
    const bool dropped = philox_uniform(42, 1003 + i) < 0.3;
    ASSERT_EQ(v[i], dropped ? 0.0 : i * (1.0 / 0.7)) << "element " << i;
    // The per-position helper a CUDA kernel uses draws the same mask.
    ASSERT_EQ(v[i], i * dropout_factor_at(42, 1003 + i, 0.3, 1.0 / 0.7)) << "element " << i;
  }
}

TEST(Dropout, MaskStatisticsAndScaling) {
  Generator gen(7);
  const int64_t n = 200000;
  for (double p : {0.1, 0.5, 0.9}) {
    Tensor y = dropout(Tensor::ones({n}), p, /*training=*/true, gen);
    std::vector<float> v = y.to_vector<float>();
    int64_t zeros = 0;
    for (float e : v) {
      if (e == 0.f) {
        ++zeros;
      } else {
        ASSERT_FLOAT_EQ(e, static_cast<float>(1.0 / (1.0 - p)));
      }
    }
    // Binomial(n, p): the standard deviation of the fraction is at most 0.0012 here.
    EXPECT_NEAR(static_cast<double>(zeros) / n, p, 0.006) << "p = " << p;
  }
}

TEST(Dropout, SameSeedSameMaskAndTheStreamMovesOn) {
  Tensor x = Tensor::ones({3, 64});
  Generator a(123), b(123);
  std::vector<float> first = dropout(x, 0.5, true, a).to_vector<float>();
  EXPECT_EQ(first, dropout(x, 0.5, true, b).to_vector<float>());
  EXPECT_NE(first, dropout(x, 0.5, true, a).to_vector<float>());
  Generator c(124);
  EXPECT_NE(first, dropout(x, 0.5, true, c).to_vector<float>());
}

TEST(Dropout, IdentityInEvalOrWithZeroProbability) {
  Tensor x = Tensor::arange(10);
  Generator gen(1);
  EXPECT_TRUE(dropout(x, 0.5, /*training=*/false, gen).same(x));
  EXPECT_TRUE(dropout(x, 0.0, /*training=*/true, gen).same(x));
  EXPECT_EQ(gen.offset(), 0u);
}

TEST(Dropout, GradientWithAFixedGenerator) {
  Generator gen(3);
  testing::expect_gradients_match(
      [](const std::vector<Tensor>& in) {
        Generator fixed(99);  // the same mask on every evaluation
        return dropout(in[0], 0.4, /*training=*/true, fixed);
      },
      {randn({4, 7}, gen)});
}

TEST(Dropout, GradientIsTheScaledMask) {
  Tensor x = Tensor::ones({1000}, DType::kF64);
  x.set_requires_grad(true);
  Generator gen(5);
  Tensor y = dropout(x, 0.25, true, gen);
  y.backward(Tensor::ones({1000}, DType::kF64));
  EXPECT_EQ(x.grad().to_vector<double>(), y.to_vector<double>());
}

TEST(Dropout, NonContiguousInputIsMaskedInLogicalOrder) {
  Tensor base = Tensor::arange(12, DType::kF64).reshape({3, 4});
  Generator a(8), b(8);
  std::vector<double> from_view = dropout(base.t(), 0.5, true, a).to_vector<double>();
  EXPECT_EQ(from_view, dropout(base.t().contiguous(), 0.5, true, b).to_vector<double>());
}

TEST(Dropout, ProbabilityOutsideRange) {
  Tensor x = Tensor::ones({4});
  for (double p : {-0.1, 1.0, 1.5}) {
    EXPECT_THAT([&] { dropout(x, p, true); },
                ThrowsMessage<Error>(HasSubstr("dropout: probability p = ")));
  }
  EXPECT_THAT([&] { dropout(x, 1.0, false); }, ThrowsMessage<Error>(HasSubstr("outside [0, 1)")));
}

}  // namespace
}  // namespace ompq
