// Automatic mixed precision (like torch.autocast): while an AutocastGuard for bf16 or f16 is alive
// on a thread, the autograd-level conv2d, linear and matmul of that thread cast their f32 inputs
// and weights to the low-precision dtype (an autograd cast, so f32 parameters stay the "master
// weights" and their gradients stay f32), compute with f32 accumulation, and return f32. Every
// other op (batch norm, activations, pooling, softmax, losses, optimizers) is untouched and runs
// in f32. The state is per thread, like grad mode.
//
// What this captures of PyTorch's AMP: the GEMM-class compute (oneDNN bf16 on AVX512-BF16/AMX
// CPUs, cuDNN/cuBLASLt tensor cores on GPUs). PyTorch also keeps the activations between layers in
// bf16/f16, halving their memory and the bandwidth of the element-wise layers. Here that is an
// option of the guard for inference (AutocastActivations::kLowPrecision): conv2d then returns the
// low-precision dtype, and the CPU's batch norm, pooling and elementwise kernels read and write it
// (f32 math inside), so that one convolution's output feeds the next without a cast. Training keeps
// f32 activations (the batch-norm and pooling gradients take f32 only), and so does any region that
// does not ask for the option: the quantized layers' fake quantization, for one, takes f32 only.
#pragma once

#include <cstdint>

#include "core/device.h"
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

// Where an autocast region keeps the activations between layers.
enum class AutocastActivations : uint8_t {
  // conv2d returns f32 (autocast_output_dtype) and every op after it runs as without autocast.
  kF32,
  // conv2d returns the autocast dtype where it records no gradient and the device's batch norm,
  // pooling and elementwise kernels take that dtype (low_precision_activations_supported: the
  // CPU); linear and matmul still return f32 (the logits). For inference.
  kLowPrecision,
};

// The dtype conv2d returns for operands of dtype `operands` on `device` (after autocast_cast);
// `records_grad`: whether the call records an autograd node.
DType autocast_conv_output_dtype(DType operands, Device device, bool records_grad);

// Sets this thread's autocast dtype for its scope and restores the previous one when it ends, so
// guards nest. AutocastGuard(DType::kBF16) or (DType::kF16) enables autocast;
// AutocastGuard(DType::kF32) disables it inside an enabled region (for a layer that must run in
// full precision). Any other dtype throws an Error. `activations` applies to an enabled region.
class AutocastGuard {
 public:
  explicit AutocastGuard(DType dtype, AutocastActivations activations = AutocastActivations::kF32);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  DType previous_;
  AutocastActivations previous_activations_;
};

}  // namespace ompq
