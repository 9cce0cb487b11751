// Helpers shared by the conv, linalg and pool tests: deterministic inputs that a PyTorch script
// reproduces exactly (for golden values), and an elementwise closeness check.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/tensor.h"

namespace ompq::testing {

// Element i of the tensor is ((i * mul) % mod - offset) / 8, in row-major order. The golden
// values in the tests come from torch on the same tensors:
//   torch.tensor([((i*mul) % mod - offset) / 8.0 for i in range(n)], dtype=torch.float64)
inline Tensor pattern_tensor(const Shape& shape, int64_t mul, int64_t mod, int64_t offset) {
  std::vector<double> v(shape_numel(shape));
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = static_cast<double>((static_cast<int64_t>(i) * mul) % mod - offset) / 8.0;
  }
  return Tensor::from_vector(v, shape);
}

// Fails for each element where |actual - expected| > tol * max(1, max |expected|): a tolerance
// relative to the scale of the whole result, which is how accumulated rounding error behaves.
inline void expect_all_close(const Tensor& actual, const Tensor& expected, double tol) {
  ASSERT_EQ(actual.shape(), expected.shape());
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  double scale = 1.0;
  for (double v : e) scale = std::max(scale, std::abs(v));
  int failures = 0;
  for (size_t i = 0; i < a.size() && failures < 5; ++i) {
    if (!(std::abs(a[i] - e[i]) <= tol * scale)) {
      ADD_FAILURE() << "element " << i << ": " << a[i] << " vs expected " << e[i] << " (tolerance "
                    << tol * scale << ")";
      ++failures;
    }
  }
}

}  // namespace ompq::testing
