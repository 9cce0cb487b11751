// Autograd-aware normalization.
#pragma once

#include "core/tensor.h"

namespace ompq {

// x: [N, C] or [N, C, H, W] (any [N, C, ...]). weight/bias: [C] or undefined. running_mean and
// running_var: [C] buffers or undefined (training only).
// training: normalizes with the batch statistics (biased variance) and, when the buffers are
// given, updates them in place without autograd, as PyTorch does:
// running = (1 - momentum) * running + momentum * batch, with the unbiased variance.
// eval: normalizes with the running statistics.
// Gradients flow to x, weight and bias in both modes.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum = 0.1, double eps = 1e-5);

}  // namespace ompq
