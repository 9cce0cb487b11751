// ops::unscale_grads_ (the unscale/found-inf pass of loss scaling) on the CPU: exact scaling by a
// power of two, the flag for inf and NaN anywhere in any tensor (which are still scaled, as
// PyTorch's kernel does), f64 and channels_last gradients, a flag that is never reset, and bad
// arguments.
#include "core/ops/amp.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/random.h"

namespace ompq {
namespace {

using ::testing::HasSubstr;

std::vector<double> scaled(const std::vector<double>& v, double s) {
  std::vector<double> out = v;
  for (double& x : out) x *= s;
  return out;
}

TEST(UnscaleGrads, ScalesEveryTensorAndFlagsNothingWhenFinite) {
  Generator gen(1);
  // Large enough for several threads' chunks.
  const Tensor a = randn({70000}, gen), b = randn({3, 5}, gen, DType::kF64);
  const Tensor cl =
      randn({2, 3, 4, 5}, gen).permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
  const std::vector<double> a0 = a.to_vector<double>(), b0 = b.to_vector<double>(),
                            c0 = cl.to_vector<double>();
  Tensor found_inf = Tensor::zeros({1});
  ops::unscale_grads_({a, b, cl}, 1.0 / 1024, found_inf);
  EXPECT_EQ(found_inf.item<float>(), 0.0f);
  EXPECT_EQ(a.to_vector<double>(), scaled(a0, 1.0 / 1024));  // a power of two: exact
  EXPECT_EQ(b.to_vector<double>(), scaled(b0, 1.0 / 1024));
  EXPECT_EQ(cl.to_vector<double>(), scaled(c0, 1.0 / 1024));
}

TEST(UnscaleGrads, FlagsInfAndNanInAnyTensorAndStillScales) {
  for (double bad : {std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity(), std::nan("")}) {
    SCOPED_TRACE(bad);
    const Tensor first = Tensor::full({40000}, 4.0);
    std::vector<float> values(50000, 2.0f);
    values[43210] = static_cast<float>(bad);
    const Tensor second = Tensor::from_vector(values, {50000});
    Tensor found_inf = Tensor::zeros({1});
    ops::unscale_grads_({first, second}, 0.5, found_inf);
    EXPECT_EQ(found_inf.item<float>(), 1.0f);
    EXPECT_EQ(first.to_vector<float>(), std::vector<float>(40000, 2.0f));
    const std::vector<float> out = second.to_vector<float>();
    EXPECT_EQ(out[0], 1.0f);
    EXPECT_EQ(out[49999], 1.0f);
    EXPECT_FALSE(std::isfinite(out[43210]));
  }
}

TEST(UnscaleGrads, NeverResetsTheFlag) {
  Tensor found_inf = Tensor::ones({1});
  ops::unscale_grads_({Tensor::ones({8})}, 0.25, found_inf);
  EXPECT_EQ(found_inf.item<float>(), 1.0f);
  ops::unscale_grads_({}, 0.25, found_inf);  // no gradients: nothing to do
  EXPECT_EQ(found_inf.item<float>(), 1.0f);
}

TEST(UnscaleGrads, RejectsBadArguments) {
  Tensor found_inf = Tensor::zeros({1});
  EXPECT_THAT([&] { ops::unscale_grads_({Tensor::ones({2}, DType::kI32)}, 0.5, found_inf); },
              ::testing::ThrowsMessage<Error>(HasSubstr("has dtype i32 (expected f32 or f64")));
  EXPECT_THAT([&] { ops::unscale_grads_({Tensor::ones({2}, DType::kF16)}, 0.5, found_inf); },
              ::testing::ThrowsMessage<Error>(HasSubstr("has dtype f16")));
  EXPECT_THAT(
      [&] {
        ops::unscale_grads_({Tensor::ones({4, 4}).slice(1, 0, 4, 2)}, 0.5, found_inf);
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("is not dense")));
  EXPECT_THAT([&] { ops::unscale_grads_({Tensor::ones({2})}, INFINITY, found_inf); },
              ::testing::ThrowsMessage<Error>(HasSubstr("inv_scale must be finite")));
  EXPECT_THAT([&] { ops::unscale_grads_({Tensor::ones({2})}, 0.5, Tensor::zeros({2})); },
              ::testing::ThrowsMessage<Error>(HasSubstr("found_inf must be an f32 tensor of one")));
  EXPECT_THAT(
      [&] { ops::unscale_grads_({Tensor::ones({2})}, 0.5, Tensor::zeros({1}, DType::kF64)); },
      ::testing::ThrowsMessage<Error>(HasSubstr("found_inf must be an f32")));
  EXPECT_THAT([&] { ops::unscale_grads_({Tensor()}, 0.5, found_inf); },
              ::testing::ThrowsMessage<Error>(HasSubstr("undefined gradient")));
}

}  // namespace
}  // namespace ompq
