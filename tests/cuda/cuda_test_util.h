// Helpers for the CUDA tests: skipping without a GPU, random inputs, CPU-vs-GPU comparison.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/ops/conv.h"
#include "core/random.h"
#include "core/tensor.h"
#include "runtime/init.h"
#include "tests/conv_params.h"

// Skips the calling test when no GPU is usable (every test that touches a CUDA tensor).
#define OMPQ_REQUIRE_GPU()                                                     \
  do {                                                                         \
    if (!::ompq::cuda_available())                                             \
      GTEST_SKIP() << "no usable GPU: " << ::ompq::runtime_info().cuda_status; \
  } while (0)

namespace ompq::testing {

// A CPU tensor of `dtype` with values uniform in [lo, hi) (truncated toward zero for integer
// dtypes), drawn from a generator seeded by `seed` so that each test gets fresh but reproducible
// inputs.
inline Tensor random_tensor_in(const Shape& shape, DType dtype, uint64_t seed, double lo,
                               double hi) {
  Generator gen(seed);
  Tensor t = Tensor::empty(shape, DType::kF64);
  ops::uniform_(t, lo, hi, gen);
  return t.to(dtype);
}

// `t` copied to GPU 0; an undefined tensor (an absent optional argument) stays undefined.
inline Tensor on_gpu(const Tensor& t) { return t.defined() ? t.to(Device::cuda()) : Tensor(); }

// Integer values uniform in [lo, hi] (both included), stored as `dtype`: quantization codes and
// zero points.
inline Tensor random_integers(const Shape& shape, DType dtype, uint64_t seed, int64_t lo,
                              int64_t hi) {
  std::vector<double> v = random_tensor_in(shape, DType::kF64, seed, 0, 1).to_vector<double>();
  for (double& x : v)
    x = static_cast<double>(lo) + std::floor(x * static_cast<double>(hi - lo + 1));
  return Tensor::from_vector(v, shape).to(dtype);
}

// Values that every dtype represents: [-8, 8) for floating dtypes, [0, 100) for integer ones.
inline Tensor random_tensor(const Shape& shape, DType dtype, uint64_t seed) {
  return is_floating(dtype) ? random_tensor_in(shape, dtype, seed, -8.0, 8.0)
                            : random_tensor_in(shape, dtype, seed, 0.0, 100.0);
}

// Every element of `actual` (any device) equal to `expected` (NaN matching NaN) or within
// atol + rtol * |expected| of it; reports the first few mismatches with their logical index.
inline void expect_close(const Tensor& expected, const Tensor& actual, double rtol, double atol,
                         const std::string& what = "") {
  ASSERT_EQ(expected.shape(), actual.shape()) << what;
  std::vector<double> e = expected.to_vector<double>();
  std::vector<double> a = actual.to_vector<double>();
  int reported = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    const bool both_nan = std::isnan(e[i]) && std::isnan(a[i]);
    if (e[i] == a[i] || both_nan || std::fabs(e[i] - a[i]) <= atol + rtol * std::fabs(e[i])) {
      continue;  // (equal first: infinities of one sign differ by NaN)
    }
    if (reported++ < 5) {
      ADD_FAILURE() << what << ": element " << i << " expected " << e[i] << " got " << a[i];
    }
  }
  EXPECT_EQ(reported, 0) << what << ": " << reported << " of " << e.size() << " elements differ";
}

// Bit-exact equality of values (through double, which holds every dtype's values exactly).
inline void expect_equal(const Tensor& expected, const Tensor& actual,
                         const std::string& what = "") {
  expect_close(expected, actual, 0.0, 0.0, what);
}

// A convolution's input [n, c, h, w], output channels o and square geometry, for the packed
// low-bit tests; name() labels a case in failure messages.
struct ConvCase {
  int64_t n, c, h, w, o, kh, kw, stride, pad, dilation, groups;
  std::string name() const {
    return absl::StrCat("N", n, "_C", c, "_H", h, "_W", w, "_O", o, "_K", kh, "x", kw, "_S", stride,
                        "_P", pad, "_D", dilation, "_G", groups);
  }
  Conv2dParams params() const { return square_conv(stride, pad, dilation, groups); }
};

}  // namespace ompq::testing
