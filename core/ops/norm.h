// Batch normalization (raw: no autograd), optionally fused with a residual add and an activation:
// y = activation(BN(x) + residual). Inputs are [N, C, ...]; kernels see x as a contiguous
// [N, C, S] array (S = product of the spatial dims, 1 for [N, C]), or as a channels_last
// [N, C, H, W] tensor (NHWC in memory: every backend's batch-norm kernels take it), and
// per-channel [C] vectors. The output, the residual and the gradients take x's layout.
// The statistics that normalized x travel as (mean, biased var) so that training and eval share
// one forward and one backward kernel: eval passes the running statistics in their place.
#pragma once

#include <array>

#include "core/dispatch.h"
#include "core/ops/norm_math.h"
#include "core/tensor.h"

namespace ompq {

// y = activation((x - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c] + residual); weight,
// bias and residual may be undefined. training: mean and var are outputs, the batch mean and
// biased variance of x over N and S; the running buffers, when defined, are updated in place with
// momentum (running_var takes the unbiased variance). eval: mean and var are inputs (the running
// statistics) and the running buffers are undefined.
using BatchNormKernel = void(const Tensor& y, const Tensor& x, const Tensor& residual,
                             const Tensor& weight, const Tensor& bias, const Tensor& mean,
                             const Tensor& var, const Tensor& running_mean,
                             const Tensor& running_var, bool training, double momentum, double eps,
                             NormActivation activation);
// With g = grad_output * activation'(from the forward output y; y is undefined for the identity):
// grad_preactivation = g (the residual's gradient), and the gradients of the normalization (and,
// when `training`, of the batch statistics) for g w.r.t. x, weight and bias. An undefined output is
// not computed. grad_output, x, y and the input gradients share one layout.
using BatchNormBackwardKernel = void(const Tensor& grad_output, const Tensor& x, const Tensor& y,
                                     const Tensor& weight, const Tensor& mean, const Tensor& var,
                                     double eps, bool training, NormActivation activation,
                                     const Tensor& grad_input, const Tensor& grad_weight,
                                     const Tensor& grad_bias, const Tensor& grad_preactivation);
extern DispatchStub<BatchNormKernel> batch_norm_stub;
extern DispatchStub<BatchNormBackwardKernel> batch_norm_backward_stub;

namespace ops {

struct BatchNormResult {
  Tensor output;
  Tensor mean;  // [C]: the statistics that normalized x, saved for the backward pass
  Tensor var;   // [C], biased
};

// x: [N, C, ...] f32/f64, or on the CPU bf16/f16 (forward only: normalized in f32, y rounded
// once). weight, bias: [C] of x's dtype (f32 for bf16/f16 x) or undefined.
// running_mean/running_var: [C] buffers, or undefined (allowed in training only). residual: x's
// shape, dtype and device, or undefined.
BatchNormResult batch_norm_act(const Tensor& x, const Tensor& weight, const Tensor& bias,
                               const Tensor& running_mean, const Tensor& running_var, bool training,
                               double momentum, double eps, NormActivation activation,
                               const Tensor& residual);
// batch_norm_act with no activation and no residual.
BatchNormResult batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                           const Tensor& running_mean, const Tensor& running_var, bool training,
                           double momentum, double eps);

struct BatchNormGrads {
  Tensor input, weight, bias;  // undefined where not requested
  Tensor residual;             // batch_norm_act_backward only
};

// `output`, `mean` and `var` are those returned by batch_norm_act() (output may be undefined for
// the identity); needed = {input, weight, bias, residual}. For the identity the residual's gradient
// is grad_output itself.
BatchNormGrads batch_norm_act_backward(const Tensor& grad_output, const Tensor& x,
                                       const Tensor& output, const Tensor& weight,
                                       const Tensor& mean, const Tensor& var, double eps,
                                       bool training, NormActivation activation,
                                       std::array<bool, 4> needed);
// The backward of batch_norm(); needed = {input, weight, bias}.
BatchNormGrads batch_norm_backward(const Tensor& grad_output, const Tensor& x, const Tensor& weight,
                                   const Tensor& mean, const Tensor& var, double eps, bool training,
                                   std::array<bool, 3> needed);

}  // namespace ops
}  // namespace ompq
