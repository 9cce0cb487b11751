// CUDA dropout against the CPU kernel: both apply core/ops/dropout_math.h's mask of Philox stream
// positions, so outputs must be equal bit for bit for every size, stream start (including starts
// that are not multiples of the four positions of a Philox counter), probability and dtype, and on
// a non-contiguous input. Needs a GPU.
#include "core/ops/dropout.h"

#include <gtest/gtest.h>

#include "cuda_test_util.h"

namespace ompq {
namespace {

using testing::expect_equal;
using testing::random_tensor_in;

TEST(CudaDropout, MaskAndScaleEqualTheCpuBitForBit) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 11000;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (int64_t numel : {1, 3, 4, 5, 1001, 65537}) {
      for (uint64_t start : {0, 1, 2, 3, 6, 1000003}) {
        for (double p : {0.0, 0.1, 0.5, 0.9}) {
          SCOPED_TRACE(std::string(dtype_name(dtype)) + " numel " + std::to_string(numel) +
                       " start " + std::to_string(start) + " p " + std::to_string(p));
          const Tensor x = random_tensor_in({numel}, dtype, seed++, -8, 8);
          const uint64_t mask_seed = 0x9E3779B97F4A7C15ull + seed;
          const Tensor expected = ops::dropout(x, p, mask_seed, start);
          const Tensor actual = ops::dropout(x.to(Device::cuda()), p, mask_seed, start);
          ASSERT_TRUE(actual.device().is_cuda());
          expect_equal(expected, actual);
        }
      }
    }
  }
}

TEST(CudaDropout, NonContiguousInputMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  const Tensor storage = random_tensor_in({13, 7, 5}, DType::kF32, 11100, -8, 8);
  const Tensor expected = ops::dropout(storage.permute({2, 0, 1}), 0.3, 42, 17);
  const Tensor actual = ops::dropout(storage.to(Device::cuda()).permute({2, 0, 1}), 0.3, 42, 17);
  expect_equal(expected, actual);
}

}  // namespace
}  // namespace ompq
