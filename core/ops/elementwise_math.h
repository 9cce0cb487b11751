// Per-element math of the elementwise ops, shared by the CPU and CUDA kernels so that the CPU tests
// cover exactly what the GPU runs. An op is an enum value; kernels bind it at compile time with
// with_unary_op / with_binary_op (a runtime switch outside the loop, a constant inside it), so each
// inner loop is specialized and vectorizable. Scalar parameters (a clamp's bounds, a pow exponent,
// the scalar of x + s) travel as two doubles and are converted to the compute type once.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/dtype.h"

namespace ompq {

enum class UnaryOp : uint8_t {
  kNeg,
  kAbs,
  kRelu,
  kClamp,  // min(max(x, a), b); relu6 is clamp(x, 0, 6)
  kSqrt,
  kExp,
  kLog,
  kSquare,
  kPow,         // x ** a
  kAddScalar,   // x + a
  kMulScalar,   // x * a
  kDivScalar,   // x / a
  kRsubScalar,  // a - x
  kRdivScalar,  // a / x
};
constexpr int kNumUnaryOps = 14;

enum class BinaryOp : uint8_t {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMaximum,  // NaN propagates, as in torch.maximum
  kMinimum,
  // Comparisons give 1 or 0 in the operands' dtype.
  kGt,
  kLt,
  kGe,
  kLe,
  kEq,
  // Backward rules whose first operand is the output gradient g and second a saved tensor.
  kReluBackward,      // g where x > 0 (also correct with x = relu's output)
  kHardtanhBackward,  // g where a < x < b (relu6: PyTorch's hardtanh gives 0 at both kinks)
  kClampBackward,     // g where a <= x <= b (PyTorch's clamp passes the gradient at the bounds)
  kAbsBackward,       // g * sign(x), sign(0) = 0
  kPowBackward,       // g * a * x ** (a - 1); 0 when a == 0
  kSqrtBackward,      // g / (2 y) with y = sqrt(x)
};
constexpr int kNumBinaryOps = 17;

// Scalar parameters of an op; unused ones are ignored.
struct ScalarParams {
  double a = 0;
  double b = 0;
};

const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);

template <UnaryOp kOp, typename T>
OMPQ_HD inline T unary_apply(T x, T a, T b) {
  if constexpr (kOp == UnaryOp::kNeg) {
    return -x;
  } else if constexpr (kOp == UnaryOp::kAbs) {
    return std::fabs(x);
  } else if constexpr (kOp == UnaryOp::kRelu) {
    return x < T(0) ? T(0) : x;  // NaN passes through, as in PyTorch
  } else if constexpr (kOp == UnaryOp::kClamp) {
    T lower = x < a ? a : x;  // NaN passes through both comparisons
    return lower > b ? b : lower;
  } else if constexpr (kOp == UnaryOp::kSqrt) {
    return std::sqrt(x);
  } else if constexpr (kOp == UnaryOp::kExp) {
    return std::exp(x);
  } else if constexpr (kOp == UnaryOp::kLog) {
    return std::log(x);
  } else if constexpr (kOp == UnaryOp::kSquare) {
    return x * x;
  } else if constexpr (kOp == UnaryOp::kPow) {
    return std::pow(x, a);
  } else if constexpr (kOp == UnaryOp::kAddScalar) {
    return x + a;
  } else if constexpr (kOp == UnaryOp::kMulScalar) {
    return x * a;
  } else if constexpr (kOp == UnaryOp::kDivScalar) {
    return x / a;
  } else if constexpr (kOp == UnaryOp::kRsubScalar) {
    return a - x;
  } else {
    static_assert(kOp == UnaryOp::kRdivScalar, "unhandled UnaryOp");
    return a / x;
  }
}

template <BinaryOp kOp, typename T>
OMPQ_HD inline T binary_apply(T x, T y, T a, T b) {
  if constexpr (kOp == BinaryOp::kAdd) {
    return x + y;
  } else if constexpr (kOp == BinaryOp::kSub) {
    return x - y;
  } else if constexpr (kOp == BinaryOp::kMul) {
    return x * y;
  } else if constexpr (kOp == BinaryOp::kDiv) {
    return x / y;
  } else if constexpr (kOp == BinaryOp::kMaximum) {
    return (x > y || x != x) ? x : y;
  } else if constexpr (kOp == BinaryOp::kMinimum) {
    return (x < y || x != x) ? x : y;
  } else if constexpr (kOp == BinaryOp::kGt) {
    return x > y ? T(1) : T(0);
  } else if constexpr (kOp == BinaryOp::kLt) {
    return x < y ? T(1) : T(0);
  } else if constexpr (kOp == BinaryOp::kGe) {
    return x >= y ? T(1) : T(0);
  } else if constexpr (kOp == BinaryOp::kLe) {
    return x <= y ? T(1) : T(0);
  } else if constexpr (kOp == BinaryOp::kEq) {
    return x == y ? T(1) : T(0);
  } else if constexpr (kOp == BinaryOp::kReluBackward) {
    return y > T(0) ? x : T(0);
  } else if constexpr (kOp == BinaryOp::kHardtanhBackward) {
    return (y > a && y < b) ? x : T(0);
  } else if constexpr (kOp == BinaryOp::kClampBackward) {
    return (y >= a && y <= b) ? x : T(0);
  } else if constexpr (kOp == BinaryOp::kAbsBackward) {
    return y > T(0) ? x : (y < T(0) ? -x : T(0));
  } else if constexpr (kOp == BinaryOp::kPowBackward) {
    return a == T(0) ? T(0) : x * a * std::pow(y, a - T(1));
  } else {
    static_assert(kOp == BinaryOp::kSqrtBackward, "unhandled BinaryOp");
    return x / (T(2) * y);
  }
}

// where(cond, x, y) for a condition of any dtype: nonzero selects x.
template <typename C, typename T>
OMPQ_HD inline T where_apply(C cond, T x, T y) {
  return cond != C(0) ? x : y;
}

namespace detail {
template <typename Enum, int kCount, int kIndex, typename Fn>
OMPQ_HD inline decltype(auto) with_op_impl(Enum op, const Fn& fn) {
  if constexpr (kIndex + 1 == kCount) {
    return fn(std::integral_constant<Enum, static_cast<Enum>(kIndex)>());
  } else {
    if (op == static_cast<Enum>(kIndex)) {
      return fn(std::integral_constant<Enum, static_cast<Enum>(kIndex)>());
    }
    return with_op_impl<Enum, kCount, kIndex + 1>(op, fn);
  }
}
}  // namespace detail

// Calls fn(std::integral_constant<UnaryOp, op>()): turns a runtime op into a compile-time one.
template <typename Fn>
inline decltype(auto) with_unary_op(UnaryOp op, const Fn& fn) {
  return detail::with_op_impl<UnaryOp, kNumUnaryOps, 0>(op, fn);
}
template <typename Fn>
inline decltype(auto) with_binary_op(BinaryOp op, const Fn& fn) {
  return detail::with_op_impl<BinaryOp, kNumBinaryOps, 0>(op, fn);
}

}  // namespace ompq
