// CUDA elementwise kernels against the CPU kernels on fresh random inputs: every unary and binary
// op and where, in f32 and f64, on contiguous, strided, channels-last and broadcast operands of odd
// sizes. Both sides run core/ops/elementwise_math.h; they differ only where CUDA's exp/log/pow
// differ from glibc's (a few ulps), hence the tolerances: f32 rtol 2e-6 (~16 ulps), f64 rtol 1e-14.
// Needs a GPU.
#include "core/functional/elementwise.h"

#include <gtest/gtest.h>

#include "core/autograd.h"
#include "core/ops/elementwise.h"
#include "cuda_test_util.h"

namespace ompq {
namespace {

using testing::expect_close;
using testing::on_gpu;
using testing::random_tensor_in;

double rtol_for(DType dtype) { return dtype == DType::kF32 ? 2e-6 : 1e-14; }
double atol_for(DType dtype) { return dtype == DType::kF32 ? 1e-6 : 1e-13; }

// Views of a fresh tensor that give the kernels different layouts of one logical shape [2,5,7,3].
struct LayoutCase {
  const char* name;
  Shape storage_shape;
  std::vector<int64_t> permutation;  // applied to the storage tensor; empty: none
  int64_t slice_step;                // along dim 1 of the result (1: no slice)
};

const LayoutCase kLayouts[] = {
    {"contiguous", {2, 5, 7, 3}, {}, 1},
    {"channels-last", {2, 7, 3, 5}, {0, 3, 1, 2}, 1},
    {"transposed", {3, 7, 5, 2}, {3, 2, 1, 0}, 1},
    {"stepped slice", {2, 10, 7, 3}, {}, 2},
};

Tensor make_layout(const LayoutCase& c, const Tensor& storage) {
  Tensor t = c.permutation.empty() ? storage : storage.permute(c.permutation);
  return c.slice_step == 1 ? t : t.slice(1, 0, t.size(1), c.slice_step);
}

struct UnaryCase {
  UnaryOp op;
  ScalarParams params;
  bool positive_input;  // log, sqrt, fractional pow need x > 0
};

const UnaryCase kUnaryCases[] = {
    {UnaryOp::kNeg, {}, false},
    {UnaryOp::kAbs, {}, false},
    {UnaryOp::kRelu, {}, false},
    {UnaryOp::kClamp, {-1.5, 2.25}, false},
    {UnaryOp::kClamp, {0, 6}, false},
    {UnaryOp::kSqrt, {}, true},
    {UnaryOp::kExp, {}, false},
    {UnaryOp::kLog, {}, true},
    {UnaryOp::kSquare, {}, false},
    {UnaryOp::kPow, {2.5, 0}, true},
    {UnaryOp::kPow, {3, 0}, false},
    {UnaryOp::kPow, {-0.5, 0}, true},
    {UnaryOp::kAddScalar, {0.75, 0}, false},
    {UnaryOp::kMulScalar, {-1.25, 0}, false},
    {UnaryOp::kDivScalar, {3, 0}, false},
    {UnaryOp::kRsubScalar, {2, 0}, false},
    {UnaryOp::kRdivScalar, {1.5, 0}, true},
};

TEST(CudaElementwise, EveryUnaryOpMatchesTheCpuInEveryLayout) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 1000;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const UnaryCase& c : kUnaryCases) {
      for (const LayoutCase& layout : kLayouts) {
        SCOPED_TRACE(std::string(unary_op_name(c.op)) + " " + dtype_name(dtype) + " " +
                     layout.name);
        const Tensor storage = c.positive_input
                                   ? random_tensor_in(layout.storage_shape, dtype, seed++, 0.01, 8)
                                   : random_tensor_in(layout.storage_shape, dtype, seed++, -8, 8);
        const Tensor x = make_layout(layout, storage);
        const Tensor x_gpu = make_layout(layout, on_gpu(storage));
        const Tensor expected = ops::unary(x, c.op, c.params);
        const Tensor actual = ops::unary(x_gpu, c.op, c.params);
        EXPECT_TRUE(actual.device().is_cuda());
        expect_close(expected, actual, rtol_for(dtype), atol_for(dtype));
      }
    }
  }
}

struct BinaryCase {
  BinaryOp op;
  ScalarParams params;
  bool positive_y;  // the saved tensor of pow/sqrt backward
  bool ties;        // small integers, so that comparisons and kinks see equal values
};

const BinaryCase kBinaryCases[] = {
    {BinaryOp::kAdd, {}, false, false},
    {BinaryOp::kSub, {}, false, false},
    {BinaryOp::kMul, {}, false, false},
    {BinaryOp::kDiv, {}, true, false},
    {BinaryOp::kMaximum, {}, false, true},
    {BinaryOp::kMinimum, {}, false, true},
    {BinaryOp::kGt, {}, false, true},
    {BinaryOp::kLt, {}, false, true},
    {BinaryOp::kGe, {}, false, true},
    {BinaryOp::kLe, {}, false, true},
    {BinaryOp::kEq, {}, false, true},
    {BinaryOp::kReluBackward, {}, false, true},
    {BinaryOp::kHardtanhBackward, {0, 6}, false, true},
    {BinaryOp::kClampBackward, {-1, 2}, false, true},
    {BinaryOp::kAbsBackward, {}, false, true},
    {BinaryOp::kPowBackward, {2.5, 0}, true, false},
    {BinaryOp::kPowBackward, {0, 0}, true, false},
    {BinaryOp::kSqrtBackward, {}, true, false},
};

Tensor binary_input(const Shape& shape, DType dtype, uint64_t seed, bool positive, bool ties) {
  if (ties) return random_tensor_in(shape, DType::kI32, seed, -3, 8).to(dtype);
  return positive ? random_tensor_in(shape, dtype, seed, 0.01, 8)
                  : random_tensor_in(shape, dtype, seed, -8, 8);
}

TEST(CudaElementwise, EveryBinaryOpMatchesTheCpuWithBroadcasting) {
  OMPQ_REQUIRE_GPU();
  // (x shape, y shape): same shape, both broadcast, a scalar, a long odd vector.
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 5, 7}, {3, 5, 7}}, {{4, 1, 7}, {5, 1}}, {{}, {6, 9}}, {{1000003}, {1}}};
  uint64_t seed = 2000;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const BinaryCase& c : kBinaryCases) {
      for (const auto& [x_shape, y_shape] : shapes) {
        SCOPED_TRACE(std::string(binary_op_name(c.op)) + " " + dtype_name(dtype) + " " +
                     shape_str(x_shape) + " with " + shape_str(y_shape));
        const Tensor x = binary_input(x_shape, dtype, seed++, false, c.ties);
        const Tensor y = binary_input(y_shape, dtype, seed++, c.positive_y, c.ties);
        expect_close(ops::binary(x, y, c.op, c.params),
                     ops::binary(on_gpu(x), on_gpu(y), c.op, c.params), rtol_for(dtype),
                     atol_for(dtype));
      }
    }
  }
}

TEST(CudaElementwise, BinaryOpsOnStridedAndChannelsLastOperands) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 3000;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (const LayoutCase& a : kLayouts) {
      for (const LayoutCase& b : kLayouts) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + a.name + " with " + b.name);
        const Tensor xs = random_tensor_in(a.storage_shape, dtype, seed++, -8, 8);
        const Tensor ys = random_tensor_in(b.storage_shape, dtype, seed++, -8, 8);
        const Tensor expected = ops::binary(make_layout(a, xs), make_layout(b, ys), BinaryOp::kMul);
        const Tensor actual =
            ops::binary(make_layout(a, on_gpu(xs)), make_layout(b, on_gpu(ys)), BinaryOp::kMul);
        expect_close(expected, actual, 0, 0);  // one rounding: exact
      }
    }
    // A per-channel bias [C,1,1] against channels-last activations.
    const Tensor act = random_tensor_in({2, 9, 11, 6}, dtype, seed++, -8, 8).permute({0, 3, 1, 2});
    const Tensor bias = random_tensor_in({6, 1, 1}, dtype, seed++, -8, 8);
    expect_close(ops::binary(act, bias, BinaryOp::kAdd),
                 ops::binary(on_gpu(act), on_gpu(bias), BinaryOp::kAdd), 0, 0);
  }
}

TEST(CudaElementwise, WhereMatchesTheCpuForEveryConditionDtype) {
  OMPQ_REQUIRE_GPU();
  uint64_t seed = 4000;
  for (DType dtype : {DType::kF32, DType::kF64}) {
    for (DType cond_dtype : {DType::kU8, DType::kF32, DType::kF64}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " cond " + dtype_name(cond_dtype));
      const Tensor cond = random_tensor_in({4, 1, 7}, DType::kI32, seed++, 0, 2).to(cond_dtype);
      const Tensor x = random_tensor_in({5, 7}, dtype, seed++, -8, 8);
      const Tensor y = random_tensor_in({4, 5, 1}, dtype, seed++, -8, 8);
      expect_close(ops::where(cond, x, y), ops::where(on_gpu(cond), on_gpu(x), on_gpu(y)), 0, 0);
    }
  }
}

TEST(CudaElementwise, NanAndInfinityBehaveAsOnTheCpu) {
  OMPQ_REQUIRE_GPU();
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dtype : {DType::kF32, DType::kF64}) {
    const Tensor x = Tensor::from_vector<double>({nan, inf, -inf, 0.0, -0.0, 1.0}, {6}).to(dtype);
    const Tensor y = Tensor::from_vector<double>({1.0, nan, -inf, 0.0, 2.0, nan}, {6}).to(dtype);
    for (UnaryOp op : {UnaryOp::kRelu, UnaryOp::kAbs, UnaryOp::kSqrt, UnaryOp::kLog, UnaryOp::kExp,
                       UnaryOp::kClamp}) {
      SCOPED_TRACE(unary_op_name(op));
      expect_close(ops::unary(x, op, {-1, 1}), ops::unary(on_gpu(x), op, {-1, 1}), 0, 0);
    }
    for (BinaryOp op : {BinaryOp::kMaximum, BinaryOp::kMinimum, BinaryOp::kDiv, BinaryOp::kEq}) {
      SCOPED_TRACE(binary_op_name(op));
      expect_close(ops::binary(x, y, op), ops::binary(on_gpu(x), on_gpu(y), op), 0, 0);
    }
  }
}

TEST(CudaElementwise, BroadcastGradientIsSummedOnTheGpu) {
  OMPQ_REQUIRE_GPU();
  const Tensor x = random_tensor_in({4, 1, 7}, DType::kF64, 5000, -2, 2);
  const Tensor y = random_tensor_in({5, 7}, DType::kF64, 5001, -2, 2);
  const Tensor g = random_tensor_in({4, 5, 7}, DType::kF64, 5002, -2, 2);
  Tensor grads[2][2];
  for (int on_device = 0; on_device < 2; ++on_device) {
    Tensor xv = (on_device ? on_gpu(x) : x.clone()).detach().set_requires_grad(true);
    Tensor yv = (on_device ? on_gpu(y) : y.clone()).detach().set_requires_grad(true);
    mul(xv, yv).backward(on_device ? on_gpu(g) : g);
    grads[on_device][0] = xv.grad();
    grads[on_device][1] = yv.grad();
  }
  EXPECT_TRUE(grads[1][0].device().is_cuda());
  expect_close(grads[0][0], grads[1][0], 1e-13, 1e-13, "grad x");
  expect_close(grads[0][1], grads[1][1], 1e-13, 1e-13, "grad y");
}

}  // namespace
}  // namespace ompq
