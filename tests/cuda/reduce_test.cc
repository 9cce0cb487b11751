// CUDA reductions against the CPU kernels: sum, mean, var, amax, amin and argmax over every dim
// combination of odd shapes, in row (reduced-inner), column (kept-inner) and split (few outputs,
// many elements) configurations, on contiguous, transposed and channels-last inputs. Sums
// accumulate in double on both devices, in different orders: f32 results agree to an ulp
// (rtol 1e-6), f64 to rtol 1e-12 (atol 1e-10 for sums that cancel). max/min/argmax are exact.
// Needs a GPU.
#include "core/ops/reduce.h"

#include <gtest/gtest.h>

#include "cuda_test_util.h"

namespace ompq {
namespace {

using testing::expect_close;
using testing::on_gpu;
using testing::random_tensor_in;

// All subsets of the dims of a rank-`rank` tensor, as dim lists ({} means all dims).
std::vector<std::vector<int64_t>> all_dim_sets(int64_t rank) {
  std::vector<std::vector<int64_t>> sets;
  for (int64_t mask = 0; mask < (int64_t{1} << rank); ++mask) {
    std::vector<int64_t> dims;
    for (int64_t d = 0; d < rank; ++d) {
      if (mask & (int64_t{1} << d)) dims.push_back(d);
    }
    sets.push_back(dims);
  }
  return sets;
}

void expect_reductions_match(const Tensor& x, const Tensor& x_gpu,
                             const std::vector<int64_t>& dims) {
  const bool f32 = x.dtype() == DType::kF32;
  const double rtol = f32 ? 1e-6 : 1e-12, atol = f32 ? 1e-5 : 1e-10;
  for (bool keepdim : {false, true}) {
    SCOPED_TRACE(std::string("dims ") + shape_str(dims) + (keepdim ? " keepdim" : ""));
    expect_close(ops::sum(x, dims, keepdim), ops::sum(x_gpu, dims, keepdim), rtol, atol, "sum");
    expect_close(ops::mean(x, dims, keepdim), ops::mean(x_gpu, dims, keepdim), rtol, atol, "mean");
    expect_close(ops::var(x, dims, true, keepdim), ops::var(x_gpu, dims, true, keepdim), 1e-5, atol,
                 "var");
    expect_close(ops::amax(x, dims, keepdim), ops::amax(x_gpu, dims, keepdim), 0, 0, "amax");
    expect_close(ops::amin(x, dims, keepdim), ops::amin(x_gpu, dims, keepdim), 0, 0, "amin");
  }
}

TEST(CudaReduce, EveryDimSetOfAnOddShapeMatchesTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 6000;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    const Tensor x = random_tensor_in({3, 5, 7, 2}, dtype, seed++, -8, 8);
    const Tensor x_gpu = on_gpu(x);
    for (const auto& dims : all_dim_sets(4)) {
      SCOPED_TRACE(dtype_name(dtype));
      expect_reductions_match(x, x_gpu, dims);
    }
  }
}

// Views that give the kernels different layouts: channels-last, transposed, stepped, selected.
std::vector<Tensor> layout_views(const Tensor& storage) {
  return {storage.permute({0, 3, 1, 2}), storage.transpose(0, 2), storage.slice(1, 1, 9, 3),
          storage.select(3, 2)};
}

TEST(CudaReduce, NonContiguousInputsMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  // The GPU views are the same views of a GPU copy of the storage, so the kernels see the strides
  // (moving a view to the GPU would make it contiguous).
  uint64_t seed = 6100;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    const Tensor storage = random_tensor_in({4, 9, 6, 5}, dtype, seed++, -8, 8);
    const std::vector<Tensor> cpu_views = layout_views(storage);
    const std::vector<Tensor> gpu_views = layout_views(on_gpu(storage));
    for (size_t v = 0; v < cpu_views.size(); ++v) {
      for (const auto& dims : all_dim_sets(cpu_views[v].dim())) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " view " + std::to_string(v));
        expect_reductions_match(cpu_views[v], gpu_views[v], dims);
      }
    }
  }
}

TEST(CudaReduce, SplitReductionsOverManyElements) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 6200;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    SCOPED_TRACE(dtype_name(dtype));
    // Everything at once (one output), rows of a long matrix, and columns of a tall one.
    const Tensor flat = random_tensor_in({1000003}, dtype, seed++, -8, 8);
    expect_reductions_match(flat, on_gpu(flat), {});
    const Tensor wide = random_tensor_in({3, 300007}, dtype, seed++, -8, 8);
    expect_reductions_match(wide, on_gpu(wide), {1});
    const Tensor tall = random_tensor_in({200003, 10}, dtype, seed++, -8, 8);
    expect_reductions_match(tall, on_gpu(tall), {0});
    // Per-channel statistics of channels-last activations (batch norm's reduction).
    const Tensor nhwc = random_tensor_in({8, 33, 35, 64}, dtype, seed++, -8, 8);
    expect_reductions_match(nhwc.permute({0, 3, 1, 2}), on_gpu(nhwc).permute({0, 3, 1, 2}),
                            {0, 2, 3});
  }
}

TEST(CudaReduce, EmptyReducedDimsAndSizeOneDims) {
  OMPQ_REQUIRE_GPU();
  const Tensor empty = Tensor::empty({0, 5});
  expect_close(ops::sum(empty, {0}, false), ops::sum(on_gpu(empty), {0}, false), 0, 0);
  const Tensor ones_dims = random_tensor_in({1, 7, 1}, DType::kF64, 6300, -8, 8);
  for (const auto& dims : all_dim_sets(3))
    expect_reductions_match(ones_dims, on_gpu(ones_dims), dims);
  const Tensor scalar = Tensor::scalar(2.5, DType::kF64);
  expect_close(ops::sum(scalar, {}, false), ops::sum(on_gpu(scalar), {}, false), 0, 0);
}

TEST(CudaReduce, NanPropagatesThroughMaxMinAndArgmax) {
  OMPQ_REQUIRE_GPU();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor x = Tensor::from_vector<double>({1, nan, 3, nan, 2, 0, 5, 5, -1}, {3, 3});
  for (int64_t dim : {0, 1}) {
    expect_close(ops::amax(x, {dim}, false), ops::amax(on_gpu(x), {dim}, false), 0, 0, "amax");
    expect_close(ops::amin(x, {dim}, false), ops::amin(on_gpu(x), {dim}, false), 0, 0, "amin");
    expect_close(ops::argmax(x, dim, false), ops::argmax(on_gpu(x), dim, false), 0, 0, "argmax");
  }
}

TEST(CudaReduce, ArgmaxTakesTheFirstMaximumInEveryLayout) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 6400;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    // Small integers: many ties, so "first" matters.
    const Tensor storage = random_tensor_in({4, 9, 6, 5}, DType::kI32, seed++, 0, 4).to(dtype);
    std::vector<Tensor> cpu_views = layout_views(storage),
                        gpu_views = layout_views(on_gpu(storage));
    cpu_views.push_back(storage);
    gpu_views.push_back(on_gpu(storage));
    for (size_t v = 0; v < cpu_views.size(); ++v) {
      for (int64_t dim = 0; dim < cpu_views[v].dim(); ++dim) {
        for (bool keepdim : {false, true}) {
          SCOPED_TRACE(std::string(dtype_name(dtype)) + " view " + std::to_string(v) + " dim " +
                       std::to_string(dim));
          expect_close(ops::argmax(cpu_views[v], dim, keepdim),
                       ops::argmax(gpu_views[v], dim, keepdim), 0, 0);
        }
      }
    }
  }
}

}  // namespace
}  // namespace ompq
