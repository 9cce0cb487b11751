#include "core/functional/norm.h"

#include "core/autograd.h"
#include "core/ops/norm.h"

namespace ompq {

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum, double eps) {
  ops::BatchNormResult result =
      ops::batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps);
  if (!any_requires_grad({x, weight, bias})) return result.output;
  const std::array<bool, 3> needed = {x.requires_grad(), weight.defined() && weight.requires_grad(),
                                      bias.defined() && bias.requires_grad()};
  // In eval mode the statistics are the running buffers themselves: snapshot them, so that a
  // later training step does not change what this backward sees.
  Tensor mean = training ? result.mean : result.mean.clone();
  Tensor var = training ? result.var : result.var.clone();
  Tensor saved_weight = weight.defined() ? weight.detach() : Tensor();
  return record(result.output, {x, weight, bias}, "BatchNormBackward",
                [x = x.detach(), saved_weight, mean, var, eps, training,
                 needed](const Tensor& grad) {
                  ops::BatchNormGrads g = ops::batch_norm_backward(grad, x, saved_weight, mean, var,
                                                                   eps, training, needed);
                  return std::vector<Tensor>{g.input, g.weight, g.bias};
                });
}

}  // namespace ompq
