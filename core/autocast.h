// Automatic mixed precision (like torch.autocast): while an AutocastGuard for bf16 or f16 is alive
// on a thread, the autograd-level conv2d, linear and matmul of that thread cast their f32 inputs
// and weights to the low-precision dtype (an autograd cast, so f32 parameters stay the "master
// weights" and their gradients stay f32), compute with f32 accumulation, and return f32. Every
// other op (batch norm, activations, pooling, softmax, losses, optimizers) is untouched and runs
// in f32. The state is per thread, like grad mode.
//
// What this captures of PyTorch's AMP: the GEMM-class compute (oneDNN bf16 on AVX512-BF16/AMX
// CPUs, cuDNN/cuBLASLt tensor cores on GPUs). What it does not yet: PyTorch keeps the activations
// between layers in bf16/f16, halving their memory and the bandwidth of the element-wise layers;
// here they are f32 (the convolution saves its low-precision input copy for backward on top). To
// capture that, batch norm, ReLU, pooling and the residual add need bf16/f16 storage kernels
// (f32 math inside) so that the low-precision output of one convolution feeds the next directly.
#pragma once

#include "core/dtype.h"
#include "core/tensor.h"

namespace ompq {

// True while the innermost AutocastGuard of this thread names bf16 or f16.
bool autocast_enabled();
// The dtype conv2d/linear/matmul compute in on this thread: bf16, f16, or f32 when disabled.
DType autocast_dtype();

// What conv2d, linear and matmul do with each floating operand: under autocast, a tensor of a
// floating dtype other than f64 and the autocast dtype is cast to the autocast dtype by an
// autograd-aware cast (its backward casts the gradient back to t's dtype) that keeps t's memory
// order (channels_last stays channels_last); anything else, and everything with autocast off, is
// returned as it is. f64 is left alone so that gradient checks stay exact.
Tensor autocast_cast(const Tensor& t);
// The dtype conv2d, linear and matmul return for operands of dtype `operands` (after
// autocast_cast): f32 under autocast when the operands have the autocast dtype, else their own.
DType autocast_output_dtype(DType operands);

// Sets this thread's autocast dtype for its scope and restores the previous one when it ends, so
// guards nest. AutocastGuard(DType::kBF16) or (DType::kF16) enables autocast;
// AutocastGuard(DType::kF32) disables it inside an enabled region (for a layer that must run in
// full precision). Any other dtype throws an Error.
class AutocastGuard {
 public:
  explicit AutocastGuard(DType dtype);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  DType previous_;
};

}  // namespace ompq
