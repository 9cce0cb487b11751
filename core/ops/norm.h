// Batch normalization (raw: no autograd). Inputs are [N, C, ...]; kernels see x as a contiguous
// [N, C, S] array (S = product of the spatial dims, 1 for [N, C]), or as a channels_last
// [N, C, H, W] tensor (NHWC in memory) on devices whose kernels take it (core/ops/memory_format.h),
// and per-channel [C] vectors. The output and the input gradient take x's layout.
// The statistics that normalized x travel as (mean, biased var) so that training and eval share
// one forward and one backward kernel: eval passes the running statistics in their place.
#pragma once

#include <array>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace ompq {

// y = (x - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]; weight/bias may be undefined.
// training: mean and var are outputs, the batch mean and biased variance of x over N and S; the
// running buffers, when defined, are updated in place with momentum (running_var takes the
// unbiased variance). eval: mean and var are inputs (the running statistics) and the running
// buffers are undefined.
using BatchNormKernel = void(const Tensor& y, const Tensor& x, const Tensor& weight,
                             const Tensor& bias, const Tensor& mean, const Tensor& var,
                             const Tensor& running_mean, const Tensor& running_var, bool training,
                             double momentum, double eps);
// Gradients of the normalization (and, when `training`, of the batch statistics) w.r.t. x, weight and
// bias; an undefined output is not computed. grad_output, x and grad_input share one layout.
using BatchNormBackwardKernel = void(const Tensor& grad_output, const Tensor& x,
                                     const Tensor& weight, const Tensor& mean, const Tensor& var,
                                     double eps, bool training, const Tensor& grad_input,
                                     const Tensor& grad_weight, const Tensor& grad_bias);
extern DispatchStub<BatchNormKernel> batch_norm_stub;
extern DispatchStub<BatchNormBackwardKernel> batch_norm_backward_stub;

namespace ops {

struct BatchNormResult {
  Tensor output;
  Tensor mean;  // [C]: the statistics that normalized x, saved for the backward pass
  Tensor var;   // [C], biased
};

// x: [N, C, ...] f32/f64. weight, bias: [C] or undefined. running_mean/running_var: [C] buffers,
// or undefined (allowed in training only).
BatchNormResult batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                           const Tensor& running_mean, const Tensor& running_var, bool training,
                           double momentum, double eps);

struct BatchNormGrads {
  Tensor input, weight, bias;  // undefined where not requested
};

// `mean`/`var` are those returned by batch_norm(); needed = {input, weight, bias}.
BatchNormGrads batch_norm_backward(const Tensor& grad_output, const Tensor& x,
                                   const Tensor& weight, const Tensor& mean, const Tensor& var,
                                   double eps, bool training, std::array<bool, 3> needed);

}  // namespace ops
}  // namespace ompq
