// The host-and-device code of the CUDA kernels, run on the CPU: the strided index math
// (cuda/strided_indexer.h) and the dtype conversion of the copy kernel (core/convert.h), which
// must round exactly as the CPU copy kernel does.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>

#include "core/convert.h"
#include "cuda/strided_indexer.h"
#include "cuda_test_util.h"

namespace ompq::cuda {
namespace {

using ::testing::HasSubstr;

// Offsets of linear index i in a row-major walk of `shape`, computed the slow obvious way.
std::array<int64_t, 2> naive_offsets(int64_t i, const Shape& shape,
                                     const std::array<Shape, 2>& strides) {
  std::array<int64_t, 2> out{0, 0};
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    const int64_t c = i % shape[d];
    i /= shape[d];
    for (int k = 0; k < 2; ++k) out[k] += c * strides[k][d];
  }
  return out;
}

template <typename index_t>
void expect_indexer_matches(const Shape& shape, const std::array<Shape, 2>& strides) {
  const auto layout = cpu::merge_dims<2>(shape, strides);
  const auto indexer = make_indexer<2, index_t>(layout);
  const int64_t n = shape_numel(shape);
  for (int64_t i = 0; i < n; ++i) {
    index_t got[2];
    indexer.offsets(static_cast<index_t>(i), got);
    const auto want = naive_offsets(i, shape, strides);
    ASSERT_EQ(static_cast<int64_t>(got[0]), want[0])
        << "operand 0, index " << i << " of shape " << shape_str(shape);
    ASSERT_EQ(static_cast<int64_t>(got[1]), want[1])
        << "operand 1, index " << i << " of shape " << shape_str(shape);
  }
}

struct LayoutCase {
  const char* what;
  Shape shape;
  Shape strides0;
  Shape strides1;
};

TEST(StridedIndexer, OffsetsMatchANaiveWalk) {
  const std::vector<LayoutCase> cases = {
      {"contiguous (merges to 1 dim)", {3, 5, 7}, {35, 7, 1}, {35, 7, 1}},
      {"transposed second operand", {5, 7}, {7, 1}, {1, 5}},
      {"broadcast rows and a column", {4, 6, 3}, {18, 3, 1}, {0, 1, 0}},
      {"sliced with steps", {3, 4, 5}, {20, 5, 1}, {200, 30, 2}},
      {"channels-last", {2, 3, 4, 5}, {60, 20, 5, 1}, {60, 1, 15, 3}},
      {"size-1 dims", {1, 9, 1, 2}, {18, 2, 2, 1}, {0, 1, 0, 9}},
      {"scalar", {}, {}, {}},
      {"8 dims, none mergeable",
       {2, 2, 2, 2, 2, 2, 2, 3},
       {1, 2, 4, 8, 16, 32, 64, 128},
       {384, 192, 96, 48, 24, 12, 6, 2}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    expect_indexer_matches<uint32_t>(c.shape, {c.strides0, c.strides1});
    expect_indexer_matches<int64_t>(c.shape, {c.strides0, c.strides1});
  }
}

TEST(StridedIndexer, MemoryOrderWalksOperandZeroSequentially) {
  // Channels-last [N, C, H, W] = [2, 3, 4, 5] and a contiguous second operand.
  const Shape shape = {2, 3, 4, 5};
  const std::array<Shape, 2> strides = {Shape{60, 1, 15, 3}, Shape{60, 20, 5, 1}};
  const auto layout = memory_ordered_layout<2>(shape, strides);
  const auto indexer = make_indexer<2, uint32_t>(layout);
  std::vector<int> seen(shape_numel(shape), 0);
  for (uint32_t i = 0; i < shape_numel(shape); ++i) {
    uint32_t offsets[2];
    indexer.offsets(i, offsets);
    ASSERT_EQ(offsets[0], i) << "operand 0 is not walked in memory order";
    // Operand 1's element is the same logical element: NHWC offset -> (n, c, h, w).
    const uint32_t n = i / 60, h = i / 15 % 4, w = i / 3 % 5, c = i % 3;
    ASSERT_EQ(offsets[1], n * 60 + c * 20 + h * 5 + w) << "index " << i;
    ++seen[offsets[1]];
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), shape_numel(shape));
}

TEST(StridedIndexer, ThirtyTwoBitsOnlyWhenEveryOffsetFits) {
  const int64_t big = int64_t{1} << 31;
  EXPECT_TRUE(fits_in_int32(cpu::merge_dims<1>({big - 1}, {Shape{1}})));
  EXPECT_FALSE(fits_in_int32(cpu::merge_dims<1>({big}, {Shape{1}})));
  // Few elements, far apart.
  EXPECT_TRUE(fits_in_int32(cpu::merge_dims<1>({3}, {Shape{(big - 1) / 2}})));
  EXPECT_FALSE(fits_in_int32(cpu::merge_dims<1>({3}, {Shape{big / 2}})));
  EXPECT_FALSE(fits_in_int32(cpu::merge_dims<2>({4, 3}, {Shape{3, 1}, Shape{big, 1}})));
}

TEST(StridedIndexer, SixtyFourBitOffsetsAreExact) {
  const int64_t far = (int64_t{1} << 33) + 7;
  const Shape shape = {3, 5};
  const std::array<Shape, 2> strides = {Shape{5, 1}, Shape{far, 3}};
  EXPECT_FALSE(fits_in_int32(cpu::merge_dims<2>(shape, strides)));
  expect_indexer_matches<int64_t>(shape, strides);
}

TEST(StridedIndexer, MoreThanEightUnmergeableDimsThrow) {
  const Shape shape(9, 2);
  Shape strides(9);
  for (int d = 0; d < 9; ++d) strides[d] = int64_t{1} << d;  // reversed: nothing merges
  const auto layout = cpu::merge_dims<1>(shape, {strides});
  try {
    make_indexer<1, int64_t>(layout);
    FAIL() << "a 9-dim layout was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("at most 8 dims"));
    EXPECT_THAT(e.what(), HasSubstr("[2, 2, 2, 2, 2, 2, 2, 2, 2]"));
  }
}

// Converts every element of `src` with core/convert.h and checks the bytes against the CPU copy
// kernel's conversion (Tensor::to).
void expect_convert_matches_cpu_copy(const Tensor& src, DType dst_dtype) {
  const Tensor expected = src.to(dst_dtype).contiguous();
  std::vector<char> actual(expected.nbytes());
  OMPQ_DISPATCH_ALL(dst_dtype, "test", [&] {
    using dst_t = scalar_t;
    OMPQ_DISPATCH_ALL(src.dtype(), "test", [&] {
      const scalar_t* in = src.data<scalar_t>();
      dst_t* out = reinterpret_cast<dst_t*>(actual.data());
      for (int64_t i = 0; i < src.numel(); ++i) out[i] = convert<dst_t>(in[i]);
    });
  });
  EXPECT_EQ(std::memcmp(actual.data(), expected.data_ptr(), actual.size()), 0)
      << dtype_name(src.dtype()) << " -> " << dtype_name(dst_dtype);
}

TEST(Convert, MatchesTheCpuCopyKernelForEveryDtypePair) {
  const DType all[] = {DType::kF32, DType::kF64, DType::kBF16, DType::kF16,
                       DType::kI8,  DType::kU8,  DType::kI32,  DType::kI64};
  uint64_t seed = 100;
  for (DType from : all) {
    for (DType to : all) {
      // Values in (-100, 100) exist in every dtype or truncate toward zero the same way;
      // negative ones are left out where either side is unsigned (undefined conversion).
      const bool unsigned_side = from == DType::kU8 || to == DType::kU8;
      expect_convert_matches_cpu_copy(testing::random_tensor_in({257}, from, seed++, 0, 100), to);
      if (!unsigned_side) {
        expect_convert_matches_cpu_copy(testing::random_tensor_in({257}, from, seed++, -100, 0),
                                        to);
      }
    }
  }
}

TEST(Convert, SpecialFloatValuesMatchTheCpuCopyKernel) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> specials = {
      std::numeric_limits<double>::quiet_NaN(),
      inf,
      -inf,
      -0.0,
      0.0,
      65504.0,
      65519.99,
      65520.0,  // f16: largest finite, last value rounding down, overflow
      6e-8,
      3e-8,
      1e-9,
      -6.1e-5,  // f16 subnormals and underflow
      1.0 + 1.0 / 256,
      1.0 + 3.0 / 256,  // bf16 ties: round to even
      3.4e38,
      1e-40};
  const Tensor values = Tensor::from_vector(specials, {static_cast<int64_t>(specials.size())});
  const DType floating[] = {DType::kF32, DType::kF64, DType::kBF16, DType::kF16};
  for (DType from : floating) {
    for (DType to : floating) expect_convert_matches_cpu_copy(values.to(from), to);
  }
}

}  // namespace
}  // namespace ompq::cuda
