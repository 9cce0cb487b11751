// Automatic mixed precision (like torch.autocast): while an AutocastGuard for bf16 or f16 is alive
// on a thread, the autograd-level conv2d, linear and matmul of that thread cast their f32 inputs
// and weights to the low-precision dtype (an autograd cast, so f32 parameters stay the "master
// weights" and their gradients stay f32), compute with f32 accumulation, and return f32. Every
// other op (batch norm, activations, pooling, softmax, losses, optimizers) is untouched and runs
// in f32. The state is per thread, like grad mode.
#pragma once

#include "core/dtype.h"

namespace ompq {

// True while the innermost AutocastGuard of this thread names bf16 or f16.
bool autocast_enabled();
// The dtype conv2d/linear/matmul compute in on this thread: bf16, f16, or f32 when disabled.
DType autocast_dtype();

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
