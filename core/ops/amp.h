// Mixed precision (raw: no autograd): the output-dtype rule of the matrix-product ops (conv2d,
// matmul, linear), the dtypes the activation ops (batch norm, pooling, elementwise) take, and the
// unscale/found-inf op of loss scaling (layers/grad_scaler.h).
#pragma once

#include <vector>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace ompq {

// grad <- grad * inv_scale for a dense floating grad, and found_inf[0] <- 1 when any element of
// grad (before scaling) is inf or NaN; found_inf (f32 [1], grad's device) is otherwise untouched.
using UnscaleGradKernel = void(const Tensor& grad, double inv_scale, const Tensor& found_inf);
extern DispatchStub<UnscaleGradKernel> unscale_grad_stub;

// Throws an Error naming `op` unless a matrix product may take operands of dtype `operands` and
// give an output of dtype `out`: the operands' own floating dtype, or f32 for bf16/f16 operands
// (low-precision products accumulated in f32 and returned without rounding, as autocast uses).
void check_product_dtypes(const char* op, DType operands, DType out);

// True where batch norm, pooling and the elementwise ops read and write bf16/f16 tensors (computing
// in f32 inside): the CPU. The CUDA kernels take f32 and f64 only.
bool low_precision_activations_supported(Device device);
// Throws an Error naming `op` and t's shape unless t's dtype is f32 or f64, or bf16/f16 on a
// device where low_precision_activations_supported().
void check_activation_dtype(const Tensor& t, const char* op);

namespace ops {

// Multiplies every element of every tensor in `grads` by inv_scale in place and sets
// found_inf[0] to 1 when any of them was inf or NaN (it is never reset here: zero it first). One
// pass over each tensor. grads: dense f32 or f64 tensors on found_inf's device; found_inf: f32 [1].
// Like PyTorch's _amp_foreach_non_finite_check_and_unscale_.
void unscale_grads_(const std::vector<Tensor>& grads, double inv_scale, const Tensor& found_inf);

}  // namespace ops
}  // namespace ompq
