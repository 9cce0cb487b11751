#include "core/ops/elementwise.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "core/ops/amp.h"

namespace ompq {

DispatchStub<UnaryKernel> unary_stub("unary");
DispatchStub<BinaryKernel> binary_stub("binary");
DispatchStub<WhereKernel> where_stub("where");

const char* unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::kNeg: return "neg";
    case UnaryOp::kAbs: return "abs";
    case UnaryOp::kRelu: return "relu";
    case UnaryOp::kClamp: return "clamp";
    case UnaryOp::kSqrt: return "sqrt";
    case UnaryOp::kExp: return "exp";
    case UnaryOp::kLog: return "log";
    case UnaryOp::kSquare: return "square";
    case UnaryOp::kPow: return "pow";
    case UnaryOp::kAddScalar: return "add";
    case UnaryOp::kMulScalar: return "mul";
    case UnaryOp::kDivScalar: return "div";
    case UnaryOp::kRsubScalar: return "rsub";
    case UnaryOp::kRdivScalar: return "rdiv";
  }
  return "unary";
}

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd: return "add";
    case BinaryOp::kSub: return "sub";
    case BinaryOp::kMul: return "mul";
    case BinaryOp::kDiv: return "div";
    case BinaryOp::kMaximum: return "maximum";
    case BinaryOp::kMinimum: return "minimum";
    case BinaryOp::kGt: return "gt";
    case BinaryOp::kLt: return "lt";
    case BinaryOp::kGe: return "ge";
    case BinaryOp::kLe: return "le";
    case BinaryOp::kEq: return "eq";
    case BinaryOp::kReluBackward: return "relu_backward";
    case BinaryOp::kHardtanhBackward: return "relu6_backward";
    case BinaryOp::kClampBackward: return "clamp_backward";
    case BinaryOp::kAbsBackward: return "abs_backward";
    case BinaryOp::kPowBackward: return "pow_backward";
    case BinaryOp::kSqrtBackward: return "sqrt_backward";
  }
  return "binary";
}

bool is_dense(const Tensor& t) {
  std::vector<int64_t> order(t.dim());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t i, int64_t j) { return t.stride(i) < t.stride(j); });
  int64_t expected = 1;
  for (int64_t d : order) {
    if (t.size(d) == 1) continue;
    if (t.stride(d) != expected) return false;
    expected *= t.size(d);
  }
  return true;
}

Tensor empty_like(const Tensor& t) {
  if (t.is_contiguous() || !is_dense(t)) return Tensor::empty(t.shape(), t.dtype(), t.device());
  auto storage = std::make_shared<Storage>(t.nbytes(), t.device());
  return Tensor::from_storage(std::move(storage), 0, t.shape(), t.strides(), t.dtype());
}

namespace {

// A raw (autograd-free) view of t broadcast to `shape`: stride 0 along new and size-1 dims.
Tensor expand_to(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  const size_t lead = shape.size() - t.shape().size();
  Shape strides(shape.size(), 0);
  for (size_t d = lead; d < shape.size(); ++d) {
    if (t.shape()[d - lead] == shape[d]) strides[d] = t.strides()[d - lead];
  }
  return as_strided(t, shape, strides, t.offset());
}

// The output of an op over `inputs` broadcast to `shape`: it takes the memory order of the first
// input that already has the full shape and is dense (so channels-last activations stay so).
Tensor empty_output(const Shape& shape, std::initializer_list<const Tensor*> inputs) {
  const Tensor& first = **inputs.begin();
  for (const Tensor* t : inputs) {
    if (t->shape() == shape) return empty_like(*t);
  }
  return Tensor::empty(shape, first.dtype(), first.device());
}

}  // namespace

namespace ops {

Tensor unary(const Tensor& x, UnaryOp op, ScalarParams params) {
  check_activation_dtype(x, unary_op_name(op));
  Tensor out = empty_like(x);
  if (out.numel() > 0) unary_stub(x.device(), out, x, op, params);
  return out;
}

Tensor binary(const Tensor& x, const Tensor& y, BinaryOp op, ScalarParams params) {
  const char* name = binary_op_name(op);
  check_same_device(x, y, name);
  check_same_dtype(x, y, name);
  check_activation_dtype(x, name);
  Shape shape = broadcast_shapes(x.shape(), y.shape(), name);
  Tensor out = empty_output(shape, {&x, &y});
  if (out.numel() > 0) binary_stub(x.device(), out, expand_to(x, shape), expand_to(y, shape), op, params);
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::kAdd); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::kSub); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::kMul); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::kDiv); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::kMaximum); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::kMinimum); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::kGt); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::kLt); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::kGe); }
Tensor le(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::kLe); }
Tensor eq(const Tensor& a, const Tensor& b) { return binary(a, b, BinaryOp::kEq); }

Tensor add(const Tensor& x, double s) { return unary(x, UnaryOp::kAddScalar, {s}); }
Tensor sub(const Tensor& x, double s) { return unary(x, UnaryOp::kAddScalar, {-s}); }
Tensor mul(const Tensor& x, double s) { return unary(x, UnaryOp::kMulScalar, {s}); }
Tensor div(const Tensor& x, double s) { return unary(x, UnaryOp::kDivScalar, {s}); }
Tensor rsub(const Tensor& x, double s) { return unary(x, UnaryOp::kRsubScalar, {s}); }
Tensor rdiv(const Tensor& x, double s) { return unary(x, UnaryOp::kRdivScalar, {s}); }

Tensor neg(const Tensor& x) { return unary(x, UnaryOp::kNeg); }
Tensor abs(const Tensor& x) { return unary(x, UnaryOp::kAbs); }
Tensor relu(const Tensor& x) { return unary(x, UnaryOp::kRelu); }
Tensor relu6(const Tensor& x) { return unary(x, UnaryOp::kClamp, {0.0, 6.0}); }
Tensor clamp(const Tensor& x, double lo, double hi) {
  return unary(x, UnaryOp::kClamp, {lo, hi});
}
Tensor sqrt(const Tensor& x) { return unary(x, UnaryOp::kSqrt); }
Tensor exp(const Tensor& x) { return unary(x, UnaryOp::kExp); }
Tensor log(const Tensor& x) { return unary(x, UnaryOp::kLog); }
Tensor square(const Tensor& x) { return unary(x, UnaryOp::kSquare); }
Tensor pow(const Tensor& x, double exponent) { return unary(x, UnaryOp::kPow, {exponent}); }

Tensor where(const Tensor& cond, const Tensor& x, const Tensor& y) {
  check_same_device(cond, x, "where");
  check_same_device(x, y, "where");
  check_same_dtype(x, y, "where");
  check_activation_dtype(x, "where");
  OMPQ_CHECK(cond.dtype() == DType::kU8 || cond.dtype() == DType::kF32 ||
                 cond.dtype() == DType::kF64,
             "where: condition of dtype ", dtype_name(cond.dtype()), " and shape ",
             shape_str(cond.shape()), " (expected u8, f32 or f64)");
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), x.shape(), "where"), y.shape(),
                                 "where");
  Tensor out = empty_output(shape, {&x, &y});
  if (out.numel() > 0) {
    where_stub(x.device(), out, expand_to(cond, shape), expand_to(x, shape), expand_to(y, shape));
  }
  return out;
}

Tensor relu_backward(const Tensor& grad, const Tensor& x) {
  return binary(grad, x, BinaryOp::kReluBackward);
}
Tensor relu6_backward(const Tensor& grad, const Tensor& x) {
  return binary(grad, x, BinaryOp::kHardtanhBackward, {0.0, 6.0});
}
Tensor clamp_backward(const Tensor& grad, const Tensor& x, double lo, double hi) {
  return binary(grad, x, BinaryOp::kClampBackward, {lo, hi});
}
Tensor abs_backward(const Tensor& grad, const Tensor& x) {
  return binary(grad, x, BinaryOp::kAbsBackward);
}
Tensor pow_backward(const Tensor& grad, const Tensor& x, double exponent) {
  return binary(grad, x, BinaryOp::kPowBackward, {exponent});
}
Tensor sqrt_backward(const Tensor& grad, const Tensor& sqrt_x) {
  return binary(grad, sqrt_x, BinaryOp::kSqrtBackward);
}

}  // namespace ops
}  // namespace ompq
