// Folding a batch norm into the convolution (or linear layer) before it, with the running
// statistics (docs/METHOD.md 4.2 and 5.2; HAWQ-V3's fix_BN): for output channel o,
//   factor[o]    = gamma[o] / sqrt(running_var[o] + eps)
//   weight'[o]   = weight[o] * factor[o]
//   bias'[o]     = (bias[o] - running_mean[o]) * factor[o] + beta[o]     (bias = 0 when absent)
// so conv(x, weight', bias') = bn_eval(conv(x, weight, bias)). Differentiable in weight, bias,
// gamma and beta (HAWQ-V3 trains them through the folded weights); the statistics are constants.
#pragma once

#include "core/tensor.h"
#include "layers/norm.h"

namespace ompq::nn {

struct FoldedWeights {
  Tensor weight;  // the weight's shape
  Tensor bias;    // [O]
};

// weight [O, ...], bias [O] or undefined, gamma/beta [O] or undefined (1 and 0), statistics [O].
FoldedWeights fold_batch_norm(const Tensor& weight, const Tensor& bias, const Tensor& gamma,
                              const Tensor& beta, const Tensor& running_mean,
                              const Tensor& running_var, double eps);
// The same with `bn`'s parameters, statistics and eps.
FoldedWeights fold_batch_norm(const Tensor& weight, const Tensor& bias, const BatchNorm& bn);

}  // namespace ompq::nn
