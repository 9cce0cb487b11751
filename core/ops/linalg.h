// Matrix products (raw: no autograd): matmul of 2-D and batched 3-D matrices, and linear.
// Operands share one dtype, f32, f64, bf16 or f16; the output (and linear's bias) has that dtype,
// or f32 for bf16/f16 operands when asked (low-precision products accumulated in f32 and returned
// unrounded: autocast's mixed precision). The CPU runs bf16 on oneDNN and widens f16 to f32
// (exact) for the f32 primitive.
#pragma once

#include "core/dispatch.h"
#include "core/tensor.h"

namespace ompq {

// out[b] = a[b] @ w[b] (+ bias[n] added to every row when bias is defined).
// a [B, M, K] and w [B, K, N] are row- or column-major in their last two dims (transposed views
// need no copy); out [B, M, N] is contiguous; bias is a contiguous [N] or undefined.
using MatmulKernel = void(const Tensor& out, const Tensor& a, const Tensor& w, const Tensor& bias);
extern DispatchStub<MatmulKernel> matmul_stub;

namespace ops {

// [M, K] x [K, N] -> [M, N], or batched [B, M, K] x [B, K, N] -> [B, M, N].
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor matmul(const Tensor& a, const Tensor& b, DType out_dtype);
// x [..., in], weight [out, in], bias [out] or undefined -> [..., out] = x @ weight^T + bias.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, DType out_dtype);

}  // namespace ops
}  // namespace ompq
