// Reductions over dims (raw: no autograd). `dims` lists the dims to reduce (negative counts from
// the end; empty: all dims); with keepdim the reduced dims stay as size 1, else they are removed.
// f32 sums accumulate in double. core/autograd.cc uses sum().
#pragma once

#include <cstdint>
#include <vector>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace ompq {

enum class ReduceOp : uint8_t { kSum, kMax, kMin };

// x is not empty; `out` is contiguous with x's rank and size 1 on the reduced dims (the keepdim
// shape); a sum is multiplied by `scale` before it is stored (mean = sum with scale 1/n).
using ReduceKernel = void(const Tensor& out, const Tensor& x, ReduceOp op, double scale);
// x has at least one dim and `dim` is not empty; `out` (i64) has x's shape with size 1 on `dim`; it
// receives the index of the first maximum along `dim` (a NaN counts as the maximum, as in PyTorch).
using ArgmaxKernel = void(const Tensor& out, const Tensor& x, int64_t dim);
extern DispatchStub<ReduceKernel> reduce_stub;
extern DispatchStub<ArgmaxKernel> argmax_stub;

namespace ops {

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
// Variance with Bessel's correction when `unbiased` (divides by n - 1), as torch.var does.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool unbiased, bool keepdim);
// Largest / smallest value (torch.amax / torch.amin); NaN propagates.
Tensor amax(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
// Index (i64) of the first maximum along `dim`.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim);

// Number of elements that each output of a reduction of x over `dims` combines.
int64_t reduced_count(const Tensor& x, const std::vector<int64_t>& dims, const char* op);
// The shape of such a reduction with keepdim (reduced dims set to 1).
Shape keepdim_shape(const Tensor& x, const std::vector<int64_t>& dims, const char* op);

}  // namespace ops
}  // namespace ompq
