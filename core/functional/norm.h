// Autograd-aware normalization.
#pragma once

#include "core/ops/norm_math.h"
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

// activation(batch_norm(x, ...) + residual) in one pass over the data, forward and backward (the
// backward keeps the output, as relu does, in place of the pre-activation). residual: x's shape,
// or undefined for none; it gets a gradient too.
Tensor batch_norm_act(const Tensor& x, const Tensor& weight, const Tensor& bias,
                      const Tensor& running_mean, const Tensor& running_var, bool training,
                      NormActivation activation, const Tensor& residual = Tensor(),
                      double momentum = 0.1, double eps = 1e-5);

}  // namespace ompq
