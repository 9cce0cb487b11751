// Broadcasting elementwise ops (raw: no autograd). Inputs are broadcast NumPy-style; the output is
// a new tensor of the broadcast shape and the inputs' dtype: f32 or f64, or on the CPU bf16/f16
// (computed in f32, rounded once; check_activation_dtype). Comparisons give 0/1 in that dtype.
// core/autograd.cc uses add(); the backward helpers at the end are the fused kernels that the
// functional layer's backward rules call.
#pragma once

#include "core/dispatch.h"
#include "core/ops/elementwise_math.h"
#include "core/tensor.h"

namespace ompq {

// Kernels receive the output (contiguous, broadcast shape) and inputs already expanded to the
// output's shape (stride 0 along broadcast dims), all of one floating dtype, except where's
// condition, which may be u8 or floating.
using UnaryKernel = void(const Tensor& out, const Tensor& x, UnaryOp op, ScalarParams params);
using BinaryKernel = void(const Tensor& out, const Tensor& x, const Tensor& y, BinaryOp op,
                          ScalarParams params);
using WhereKernel = void(const Tensor& out, const Tensor& cond, const Tensor& x, const Tensor& y);
extern DispatchStub<UnaryKernel> unary_stub;
extern DispatchStub<BinaryKernel> binary_stub;
extern DispatchStub<WhereKernel> where_stub;

// True when t's elements fill a block of memory without gaps or overlaps in some dim order (a
// permutation of a contiguous layout, e.g. channels-last).
bool is_dense(const Tensor& t);
// An uninitialized tensor like t, in t's memory order when t is dense, else contiguous.
Tensor empty_like(const Tensor& t);

namespace ops {

// The generic front halves: check, broadcast, allocate, dispatch.
Tensor unary(const Tensor& x, UnaryOp op, ScalarParams params = {});
Tensor binary(const Tensor& x, const Tensor& y, BinaryOp op, ScalarParams params = {});

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);

Tensor add(const Tensor& x, double s);
Tensor sub(const Tensor& x, double s);
Tensor mul(const Tensor& x, double s);
Tensor div(const Tensor& x, double s);
Tensor rsub(const Tensor& x, double s);  // s - x
Tensor rdiv(const Tensor& x, double s);  // s / x

Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor sqrt(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor square(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);

// cond ? x : y, all three broadcast together; cond is u8 or floating (nonzero is true).
Tensor where(const Tensor& cond, const Tensor& x, const Tensor& y);

// Fused backward rules: the gradient of x given the output gradient `grad` (see BinaryOp).
Tensor relu_backward(const Tensor& grad, const Tensor& x);
Tensor relu6_backward(const Tensor& grad, const Tensor& x);
Tensor clamp_backward(const Tensor& grad, const Tensor& x, double lo, double hi);
Tensor abs_backward(const Tensor& grad, const Tensor& x);
Tensor pow_backward(const Tensor& grad, const Tensor& x, double exponent);
Tensor sqrt_backward(const Tensor& grad, const Tensor& sqrt_x);

}  // namespace ops
}  // namespace ompq
