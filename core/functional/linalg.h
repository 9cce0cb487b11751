// Autograd-aware matrix products.
#pragma once

#include "core/tensor.h"

namespace ompq {

// [M, K] x [K, N] -> [M, N], or batched [B, M, K] x [B, K, N] -> [B, M, N].
Tensor matmul(const Tensor& a, const Tensor& b);
// x [..., in], weight [out, in], bias [out] or undefined -> x @ weight^T + bias, [..., out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

}  // namespace ompq
