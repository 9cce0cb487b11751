// random_affine (core/philox.h): the one rounding that turns a Philox draw into a tensor value on
// both devices. Checked with scales that are not exact in binary (0.3, 1/3), where a fused
// multiply-add and a separate multiply and add round differently, so that a kernel computing its
// own a * r + b would be caught.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/philox.h"
#include "core/random.h"

namespace ompq {
namespace {

// scale * r + shift with the product rounded before the add: what an uncontracted a * r + b gives.
double unfused_affine(double scale, float r, double shift) {
  volatile double product = scale * static_cast<double>(r);  // volatile: no contraction here
  return product + shift;
}

// A fill and the scale and shift it hands the kernel.
struct AffineCase {
  const char* what;
  Distribution dist;
  double scale;
  double shift;
  void (*fill)(const Tensor& t, Generator& gen);
};

const AffineCase kInexactCases[] = {
    {"uniform in [0.1, 0.4)", Distribution::kUniform, 0.4 - 0.1, 0.1,
     [](const Tensor& t, Generator& gen) { ops::uniform_(t, 0.1, 0.4, gen); }},
    {"normal, mean 0.1, std 1/3", Distribution::kNormal, 1.0 / 3.0, 0.1,
     [](const Tensor& t, Generator& gen) { ops::normal_(t, 0.1, 1.0 / 3.0, gen); }},
};

float draw(Distribution dist, uint64_t seed, uint64_t position) {
  return dist == Distribution::kNormal ? philox_normal(seed, position)
                                       : philox_uniform(seed, position);
}

TEST(RandomAffine, IsOneFusedMultiplyAddAndDiffersFromTheUnfusedOne) {
  for (const AffineCase& c : kInexactCases) {
    SCOPED_TRACE(c.what);
    int rounded_differently = 0;
    for (uint64_t i = 0; i < 4096; ++i) {
      const float r = draw(c.dist, 17, i);
      const double fused = random_affine(c.scale, r, c.shift);
      ASSERT_EQ(fused, std::fma(c.scale, static_cast<double>(r), c.shift)) << "draw " << r;
      if (fused != unfused_affine(c.scale, r, c.shift)) ++rounded_differently;
    }
    // Otherwise these scales would not tell a fused kernel from an unfused one.
    EXPECT_GT(rounded_differently, 0);
  }
}

TEST(RandomAffine, CpuFillTakesRandomAffineOfEachDraw) {
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const AffineCase& c : kInexactCases) {
      SCOPED_TRACE(testing::Message() << dtype_name(dtype) << ", " << c.what);
      Generator gen(2024);
      gen.advance(3);  // an odd offset: normal draws then start from the next even position
      const uint64_t offset = gen.offset();
      Tensor t = Tensor::empty({3, 1001}, dtype);
      c.fill(t, gen);
      const uint64_t first = c.dist == Distribution::kNormal ? (offset + 1) / 2 : offset;
      const std::vector<double> got = t.to_vector<double>();
      for (size_t i = 0; i < got.size(); ++i) {
        const double value = random_affine(c.scale, draw(c.dist, 2024, first + i), c.shift);
        const double want = dtype == DType::kF32 ? static_cast<float>(value) : value;
        ASSERT_EQ(got[i], want) << "element " << i;
      }
    }
  }
}

}  // namespace
}  // namespace ompq
