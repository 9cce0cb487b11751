// The ORM's Gram matrices from features on the GPU (batched cuBLASLt products of the per-channel
// slices, summed over channels in f64 on the device) against the CPU's (oneDNN), and the
// orthogonality matrix built from them.
// Each partial product sums one channel's H*W products in f32 in another order on each device:
// Grams of f32 features agree to rtol 1e-5 plus 1e-6 of the largest entry (signed logits cancel),
// f64 to 1e-12. Centering removes the features' mean part, which magnifies those differences
// about a hundredfold for post-ReLU-like features: the ORM of f32 features agrees to 1e-4, of f64
// ones to 1e-10. Needs a GPU.
#include "solver/search/orm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "core/ops/conv.h"
#include "core/ops/elementwise.h"
#include "cuda_test_util.h"

namespace ompq::solver {
namespace {

using testing::expect_close;
using testing::on_gpu;
using testing::random_tensor_in;

double largest(const Tensor& t) {
  const std::vector<double> v = t.to_vector<double>();
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

struct FeatureCase {
  const char* name;
  Shape shape;
  DType dtype;
  double lo, hi;
};

const FeatureCase kFeatures[] = {
    {"post-ReLU conv feature, odd sizes", {12, 37, 9, 7}, DType::kF32, 0, 2},
    {"logits", {16, 1000}, DType::kF32, -4, 4},
    {"3-dim feature", {5, 3, 301}, DType::kF32, -1, 3},
    {"f64 conv feature", {9, 5, 6, 7}, DType::kF64, 0, 2},
};

TEST(CudaOrm, GramMatricesMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 7700;
  for (const FeatureCase& c : kFeatures) {
    SCOPED_TRACE(c.name);
    const Tensor f = random_tensor_in(c.shape, c.dtype, seed++, c.lo, c.hi);
    const Tensor expected = gram_matrix(f);
    const Tensor actual = gram_matrix(on_gpu(f));
    EXPECT_TRUE(actual.device().is_cpu());
    EXPECT_EQ(actual.dtype(), DType::kF64);
    const double rtol = c.dtype == DType::kF32 ? 1e-5 : 1e-12;
    const double atol = (c.dtype == DType::kF32 ? 1e-6 : 1e-13) * largest(expected);
    expect_close(expected, actual, rtol, atol, "gram");
    // Symmetric exactly, as on the CPU.
    expect_close(actual, actual.transpose(0, 1), 0, 0, "gram^T");
  }
  // A channels_last feature on the GPU gives the Gram matrix of its logical values.
  const Tensor f = random_tensor_in({6, 19, 5, 4}, DType::kF32, seed++, 0, 2);
  Tensor nhwc = empty_nchw(f.shape(), true, f.dtype(), Device::cuda());
  nhwc.copy_(f);
  expect_close(gram_matrix(f), gram_matrix(nhwc), 1e-5, 1e-6 * largest(gram_matrix(f)),
               "channels_last");
}

// Five layers' features of 10 samples: random, and mixtures of earlier ones, so that the ORMs
// spread over (0, 1).
std::vector<Tensor> layer_features(DType dtype, uint64_t seed) {
  const Shape shapes[] = {{10, 8, 9, 9}, {10, 16, 5, 5}, {10, 16, 5, 5}, {10, 32, 3, 3}, {10, 100}};
  std::vector<Tensor> features;
  for (const Shape& shape : shapes) {
    Tensor f = random_tensor_in(shape, dtype, seed++, 0, 2);
    if (features.size() == 2) {
      f = ops::add(ops::mul(features[1], 0.8), ops::mul(f, 0.2));
    }
    features.push_back(f);
  }
  return features;
}

TEST(CudaOrm, OrthogonalityMatrixFromGpuFeaturesMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  for (DType dtype : {DType::kF32, DType::kF64}) {
    SCOPED_TRACE(dtype_name(dtype));
    std::vector<Tensor> cpu_grams, gpu_grams;
    for (const Tensor& f : layer_features(dtype, 7800)) {
      cpu_grams.push_back(gram_matrix(f));
      gpu_grams.push_back(gram_matrix(on_gpu(f)));
    }
    const Tensor expected = orthogonality_matrix(cpu_grams);
    const Tensor actual = orthogonality_matrix(gpu_grams);
    const double tol = dtype == DType::kF32 ? 1e-4 : 1e-10;
    expect_close(expected, actual, 0, tol, "ORM");
    // Layers 1 and 2 share most of their feature: the compared values span (0, 1).
    EXPECT_GT(expected.to_vector<double>()[1 * 5 + 2], 0.5);
  }
}

}  // namespace
}  // namespace ompq::solver
