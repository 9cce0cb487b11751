// CUDA pooling against the CPU kernels on fresh random inputs: max (values and indices), average
// and adaptive average, forward and backward, over window configurations with and without
// padding and overlap and odd plane sizes, on contiguous and channels-last inputs; the kernels
// also on channels_last (NHWC) tensors directly.
// Max values and indices are exact (both walk each window in row-major order). The average
// backward gathers in the CPU's scatter order and is exact too; the average forward sums a window
// in a different order from the CPU's vectorized loop. The max backward adds by atomics: exact
// where a pixel is the maximum of at most two windows, not otherwise. Both: f32 rtol and atol
// 1e-5, f64 1e-13.
// The CUDA tests need a GPU; the window-range test of the backward gather and the layout test of
// the kernels' index math run anywhere.
#include "core/ops/pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <vector>

#include "core/ops/conv.h"
#include "core/ops/memory_format.h"
#include "core/ops/pool_math.h"
#include "cuda/pool_layout.h"
#include "cuda_test_util.h"

namespace ompq {
namespace {

using testing::expect_close;
using testing::expect_equal;
using testing::on_gpu;
using testing::random_tensor_in;

// For results that sum a window or several gradients in an order other than the CPU's: a few
// ulps of the partial sums (values up to ~50), which may cancel.
double rtol_for(DType dtype) { return dtype == DType::kF32 ? 1e-5 : 1e-13; }
double atol_for(DType dtype) { return dtype == DType::kF32 ? 1e-5 : 1e-13; }

struct WindowCase {
  const char* name;
  Shape input;
  Pool2dParams params;
};

const WindowCase kWindows[] = {
    {"2x2 stride 2", {2, 3, 8, 10}, {{2, 2}, {2, 2}, {0, 0}}},
    {"3x3 stride 2 pad 1 (ResNet stem)", {2, 5, 17, 13}, {{3, 3}, {2, 2}, {1, 1}}},
    {"3x3 stride 1 pad 1 (9 overlapping windows)", {1, 4, 9, 11}, {{3, 3}, {1, 1}, {1, 1}}},
    {"3x2 stride (2, 1) pad (1, 0)", {3, 2, 12, 7}, {{3, 2}, {2, 1}, {1, 0}}},
    {"odd plane, floor mode drops a row", {2, 3, 7, 7}, {{2, 2}, {2, 2}, {0, 0}}},
    {"window of the whole plane", {4, 3, 5, 6}, {{5, 6}, {1, 1}, {0, 0}}},
};

// Inputs from few distinct values: ties make "first maximum" decide.
Tensor tied_input(const Shape& shape, DType dtype, uint64_t seed) {
  return random_tensor_in(shape, DType::kI32, seed, -4, 4).to(dtype);
}

// The outputs a gathering backward pass visits for input i (pool_math.h, run here on the CPU):
// filtered by their windows, they must be exactly the outputs whose windows contain i.
template <typename WindowAt, typename Covering>
void expect_covering_is_exact(int64_t in, int64_t out, const WindowAt& window_at,
                              const Covering& covering, const std::string& what) {
  for (int64_t i = 0; i < in; ++i) {
    std::vector<int64_t> brute, gathered;
    for (int64_t o = 0; o < out; ++o) {
      const PoolWindow w = window_at(o);
      if (w.begin <= i && i < w.end) brute.push_back(o);
    }
    int64_t first, last;
    covering(i, &first, &last);
    ASSERT_GE(first, 0) << what << " input " << i;
    for (int64_t o = first; o <= last; ++o) {
      ASSERT_LT(o, out) << what << " input " << i;
      const PoolWindow w = window_at(o);
      if (w.begin <= i && i < w.end) gathered.push_back(o);
    }
    EXPECT_EQ(brute, gathered) << what << " input " << i;
  }
}

TEST(PoolMath, OutputsCoveringAnInputAreExactlyTheWindowsContainingIt) {
  for (int64_t kernel = 1; kernel <= 5; ++kernel) {
    for (int64_t stride = 1; stride <= 4; ++stride) {
      for (int64_t pad = 0; 2 * pad <= kernel; ++pad) {
        for (int64_t in = std::max<int64_t>(1, kernel - 2 * pad); in <= 12; ++in) {
          const int64_t out = (in + 2 * pad - kernel) / stride + 1;
          expect_covering_is_exact(
              in, out, [&](int64_t o) { return pool_window(o, kernel, stride, pad, in); },
              [&](int64_t i, int64_t* first, int64_t* last) {
                pool_outputs_covering(i, kernel, stride, pad, out, first, last);
              },
              "kernel " + std::to_string(kernel) + " stride " + std::to_string(stride) + " pad " +
                  std::to_string(pad) + " in " + std::to_string(in));
        }
      }
    }
  }
  for (int64_t in = 1; in <= 12; ++in) {
    for (int64_t out = 1; out <= 14; ++out) {
      expect_covering_is_exact(
          in, out,
          [&](int64_t o) {
            const int64_t begin = adaptive_bin_begin(o, in, out),
                          end = adaptive_bin_end(o, in, out);
            return PoolWindow{begin, end, end - begin};
          },
          [&](int64_t i, int64_t* first, int64_t* last) {
            adaptive_outputs_covering(i, in, out, first, last);
          },
          "adaptive in " + std::to_string(in) + " out " + std::to_string(out));
    }
  }
}

// The kernels' element coordinates (cuda/pool_layout.h, run here on the CPU) against a tensor
// whose values encode their own logical coordinates, in both memory layouts and both index types.
template <bool kChannelsLast, typename index_t>
void expect_layout_matches_memory(const Shape& shape) {
  const int64_t count = shape_numel(shape);
  std::vector<double> codes(count);
  for (int64_t i = 0; i < count; ++i) codes[i] = static_cast<double>(i);  // the logical index
  Tensor t = empty_nchw(shape, kChannelsLast, DType::kF64, Device::cpu());
  t.copy_(Tensor::from_vector(codes, shape));
  ASSERT_EQ(is_channels_last(t), kChannelsLast && shape[1] > 1 && shape[2] * shape[3] > 1);
  const double* memory = t.data<double>() - t.offset();  // the storage in memory order
  const cuda::PoolLayout<kChannelsLast> layout{shape[1]};
  for (int64_t i = 0; i < count; ++i) {
    index_t n, c, row, col;
    layout.split(static_cast<index_t>(i), shape[2], shape[3], &n, &c, &row, &col);
    const int64_t logical = ((int64_t{n} * shape[1] + c) * shape[2] + row) * shape[3] + col;
    ASSERT_EQ(memory[i], static_cast<double>(logical)) << "memory index " << i;
    ASSERT_EQ(layout.plane(n, c, shape[2] * shape[3])[int64_t{row} * shape[3] + col], i);
  }
}

TEST(PoolLayout, CoordinatesMatchTheTensorsMemoryOrder) {
  for (const Shape& shape :
       {Shape{2, 3, 5, 7}, Shape{3, 1, 4, 6}, Shape{4, 5, 1, 1}, Shape{1, 6, 3, 1}}) {
    SCOPED_TRACE(shape_str(shape));
    expect_layout_matches_memory<false, uint32_t>(shape);
    expect_layout_matches_memory<false, int64_t>(shape);
    expect_layout_matches_memory<true, uint32_t>(shape);
    expect_layout_matches_memory<true, int64_t>(shape);
  }
}

TEST(CudaPool, MaxPoolForwardAndBackwardMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 8000;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const WindowCase& w : kWindows) {
      for (bool ties : {false, true}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + w.name + (ties ? " ties" : ""));
        const Tensor x = ties ? tied_input(w.input, dtype, seed++)
                              : random_tensor_in(w.input, dtype, seed++, -8, 8);
        const auto expected = ops::max_pool2d(x, w.params);
        const auto actual = ops::max_pool2d(on_gpu(x), w.params);
        ASSERT_TRUE(actual.output.device().is_cuda());
        expect_equal(expected.output, actual.output, "output");
        expect_equal(expected.indices, actual.indices, "indices");
        const Tensor grad = random_tensor_in(expected.output.shape(), dtype, seed++, -2, 2);
        expect_close(ops::max_pool2d_backward(grad, expected.indices, x.shape()),
                     ops::max_pool2d_backward(on_gpu(grad), actual.indices, x.shape()),
                     rtol_for(dtype), atol_for(dtype), "grad input");
      }
    }
  }
}

TEST(CudaPool, MaxPoolNanWinsAsOnTheCpu) {
  OMPQ_REQUIRE_GPU();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor x = Tensor::from_vector<double>(
      {1, nan, 3, 0, 2, 9, nan, nan, -1, 5, 4, 4, nan, 0, 7, 7}, {1, 1, 4, 4});
  for (const Pool2dParams& p :
       {Pool2dParams{{2, 2}, {2, 2}, {0, 0}}, Pool2dParams{{3, 3}, {1, 1}, {1, 1}}}) {
    const auto expected = ops::max_pool2d(x, p);
    const auto actual = ops::max_pool2d(on_gpu(x), p);
    expect_equal(expected.output, actual.output, "output");
    expect_equal(expected.indices, actual.indices, "indices");
  }
}

TEST(CudaPool, AvgPoolForwardAndBackwardMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 8100;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const WindowCase& w : kWindows) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + w.name);
      const Tensor x = random_tensor_in(w.input, dtype, seed++, -8, 8);
      const Tensor expected = ops::avg_pool2d(x, w.params);
      expect_close(expected, ops::avg_pool2d(on_gpu(x), w.params), rtol_for(dtype), atol_for(dtype),
                   "output");
      const Tensor grad = random_tensor_in(expected.shape(), dtype, seed++, -2, 2);
      expect_equal(ops::avg_pool2d_backward(grad, x.shape(), w.params),
                   ops::avg_pool2d_backward(on_gpu(grad), x.shape(), w.params), "grad input");
    }
  }
}

TEST(CudaPool, AdaptiveAvgPoolForwardAndBackwardMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 8200;
  // Output sizes that divide the input, that do not (overlapping bins), larger than the input
  // (repeated rows), and 1x1 (global average pooling).
  const std::pair<Shape, std::array<int64_t, 2>> kCases[] = {
      {{2, 3, 8, 8}, {4, 4}}, {{2, 3, 7, 10}, {3, 4}}, {{1, 2, 3, 5}, {7, 6}},
      {{4, 5, 7, 7}, {1, 1}}, {{3, 2, 13, 1}, {5, 1}},
  };
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const auto& [shape, size] : kCases) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + shape_str(shape) + " -> " +
                   std::to_string(size[0]) + "x" + std::to_string(size[1]));
      const Tensor x = random_tensor_in(shape, dtype, seed++, -8, 8);
      const Tensor expected = ops::adaptive_avg_pool2d(x, size);
      expect_close(expected, ops::adaptive_avg_pool2d(on_gpu(x), size), rtol_for(dtype),
                   atol_for(dtype), "output");
      const Tensor grad = random_tensor_in(expected.shape(), dtype, seed++, -2, 2);
      expect_equal(ops::adaptive_avg_pool2d_backward(grad, x.shape()),
                   ops::adaptive_avg_pool2d_backward(on_gpu(grad), x.shape()), "grad input");
    }
  }
}

// The CUDA kernels on channels_last tensors (NHWC in memory), called through the dispatch stubs
// as the ops call them, against the CPU's NHWC kernels: both walk each window in row-major order
// and gather or scatter the average's shares in output order, so everything but the atomic max
// backward is bit-exact.
Tensor channels_last(const Tensor& t, Device device) {
  Tensor out = empty_nchw(t.shape(), true, t.dtype(), device);
  out.copy_(t);
  return out;
}

Shape pooled_shape(const Shape& x, const Pool2dParams& p) {
  return {x[0], x[1], (x[2] + 2 * p.padding[0] - p.kernel[0]) / p.stride[0] + 1,
          (x[3] + 2 * p.padding[1] - p.kernel[1]) / p.stride[1] + 1};
}

// The window cases, plus one with many channels (coalesced rows of a warp) and one with a single
// channel (both layouts are the same memory).
std::vector<WindowCase> channels_last_windows() {
  std::vector<WindowCase> cases(std::begin(kWindows), std::end(kWindows));
  cases.push_back({"3x3 stride 2 pad 1, 67 channels", {2, 67, 9, 11}, {{3, 3}, {2, 2}, {1, 1}}});
  cases.push_back({"2x2 stride 1, one channel", {3, 1, 6, 5}, {{2, 2}, {1, 1}, {0, 0}}});
  return cases;
}

TEST(CudaPool, ChannelsLastMaxPoolKernelsMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 8400;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const WindowCase& w : channels_last_windows()) {
      for (bool ties : {false, true}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + w.name + (ties ? " ties" : ""));
        const Tensor x = ties ? tied_input(w.input, dtype, seed++)
                              : random_tensor_in(w.input, dtype, seed++, -8, 8);
        const auto expected = ops::max_pool2d(channels_last(x, Device::cpu()), w.params);
        const Shape out_shape = pooled_shape(w.input, w.params);
        const Tensor out = empty_nchw(out_shape, true, dtype, Device::cuda());
        const Tensor indices = empty_nchw(out_shape, true, DType::kI64, Device::cuda());
        max_pool2d_stub(Device::cuda(), out, indices, channels_last(x, Device::cuda()), w.params);
        expect_equal(expected.output, out, "output");
        expect_equal(expected.indices, indices, "indices");
        const Tensor grad = random_tensor_in(out_shape, dtype, seed++, -2, 2);
        const Tensor grad_x = empty_nchw(w.input, true, dtype, Device::cuda());
        max_pool2d_backward_stub(Device::cuda(), grad_x, channels_last(grad, Device::cuda()),
                                 indices);
        expect_close(ops::max_pool2d_backward(channels_last(grad, Device::cpu()), expected.indices,
                                              w.input, true),
                     grad_x, rtol_for(dtype), atol_for(dtype), "grad input");
      }
    }
  }
}

TEST(CudaPool, ChannelsLastAvgPoolKernelsMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 8500;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const WindowCase& w : channels_last_windows()) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + w.name);
      const Tensor x = random_tensor_in(w.input, dtype, seed++, -8, 8);
      const Shape out_shape = pooled_shape(w.input, w.params);
      const Tensor out = empty_nchw(out_shape, true, dtype, Device::cuda());
      avg_pool2d_stub(Device::cuda(), out, channels_last(x, Device::cuda()), w.params);
      // (Bitwise but for the single channel, whose tensors are also NCHW: the CPU then sums
      // window rows in vector lanes.)
      expect_close(ops::avg_pool2d(channels_last(x, Device::cpu()), w.params), out,
                   w.input[1] == 1 ? rtol_for(dtype) : 0, w.input[1] == 1 ? atol_for(dtype) : 0,
                   "output");
      const Tensor grad = random_tensor_in(out_shape, dtype, seed++, -2, 2);
      const Tensor grad_x = empty_nchw(w.input, true, dtype, Device::cuda());
      avg_pool2d_backward_stub(Device::cuda(), grad_x, channels_last(grad, Device::cuda()),
                               w.params);
      expect_equal(
          ops::avg_pool2d_backward(channels_last(grad, Device::cpu()), w.input, w.params, true),
          grad_x, "grad input");
    }
  }
}

TEST(CudaPool, ChannelsLastAdaptiveAvgPoolKernelsMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 8600;
  const std::pair<Shape, std::array<int64_t, 2>> kCases[] = {
      {{2, 3, 8, 8}, {4, 4}},  {{2, 13, 7, 10}, {3, 4}}, {{1, 2, 3, 5}, {7, 6}},
      {{4, 70, 7, 7}, {1, 1}}, {{3, 2, 13, 1}, {5, 1}},
  };
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const auto& [shape, size] : kCases) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + shape_str(shape) + " -> " +
                   std::to_string(size[0]) + "x" + std::to_string(size[1]));
      const Tensor x = random_tensor_in(shape, dtype, seed++, -8, 8);
      const Shape out_shape{shape[0], shape[1], size[0], size[1]};
      const Tensor out = empty_nchw(out_shape, true, dtype, Device::cuda());
      adaptive_avg_pool2d_stub(Device::cuda(), out, channels_last(x, Device::cuda()));
      expect_equal(ops::adaptive_avg_pool2d(channels_last(x, Device::cpu()), size), out, "output");
      const Tensor grad = random_tensor_in(out_shape, dtype, seed++, -2, 2);
      const Tensor grad_x = empty_nchw(shape, true, dtype, Device::cuda());
      adaptive_avg_pool2d_backward_stub(Device::cuda(), grad_x,
                                        channels_last(grad, Device::cuda()));
      expect_equal(
          ops::adaptive_avg_pool2d_backward(channels_last(grad, Device::cpu()), shape, true),
          grad_x, "grad input");
    }
  }
}

// Through the ops: channels_last in, the CPU's values out, still channels_last.
TEST(CudaPool, ChannelsLastOpsMatchTheCpu) {
  OMPQ_REQUIRE_GPU();
  const Tensor nhwc = random_tensor_in({2, 11, 9, 6}, DType::kF32, 8300, -8, 8);
  const Tensor x = nhwc.permute({0, 3, 1, 2}), x_gpu = on_gpu(nhwc).permute({0, 3, 1, 2});
  const Pool2dParams p{{3, 3}, {2, 2}, {1, 1}};
  const auto expected = ops::max_pool2d(x, p);
  const auto actual = ops::max_pool2d(x_gpu, p);
  EXPECT_TRUE(is_channels_last(actual.output));
  expect_equal(expected.output, actual.output, "max output");
  expect_equal(expected.indices, actual.indices, "max indices");
  const Tensor grad = random_tensor_in(expected.output.shape(), DType::kF32, 8301, -2, 2);
  const Tensor grad_x =
      ops::max_pool2d_backward(on_gpu(grad), actual.indices, x.shape(), /*channels_last=*/true);
  EXPECT_TRUE(is_channels_last(grad_x));
  expect_close(ops::max_pool2d_backward(grad, expected.indices, x.shape(), true), grad_x, 1e-5,
               1e-5, "max grad input");
  expect_close(ops::avg_pool2d(x, p), ops::avg_pool2d(x_gpu, p), 1e-5, 1e-5, "avg output");
  expect_close(ops::adaptive_avg_pool2d(x, {1, 1}), ops::adaptive_avg_pool2d(x_gpu, {1, 1}), 1e-5,
               1e-5, "adaptive output");
}

}  // namespace
}  // namespace ompq
