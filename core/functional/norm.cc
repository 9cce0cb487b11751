#include "core/functional/norm.h"

#include "core/autograd.h"
#include "core/ops/norm.h"
#include "core/trace.h"

namespace ompq {

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum, double eps) {
  return batch_norm_act(x, weight, bias, running_mean, running_var, training,
                        NormActivation::kIdentity, Tensor(), momentum, eps);
}

Tensor batch_norm_act(const Tensor& x, const Tensor& weight, const Tensor& bias,
                      const Tensor& running_mean, const Tensor& running_var, bool training,
                      NormActivation activation, const Tensor& residual, double momentum,
                      double eps) {
  return trace::traced(
      [&]() -> Tensor {
        ops::BatchNormResult result =
            ops::batch_norm_act(x, weight, bias, running_mean, running_var, training, momentum, eps,
                                activation, residual);
        if (!any_requires_grad({x, weight, bias, residual})) return result.output;
        const std::array<bool, 4> needed = {
            x.requires_grad(), weight.defined() && weight.requires_grad(),
            bias.defined() && bias.requires_grad(), residual.defined() && residual.requires_grad()};
        // In eval mode the statistics are the running buffers themselves: snapshot them, so that a
        // later training step does not change what this backward sees.
        Tensor mean = training ? result.mean : result.mean.clone();
        Tensor var = training ? result.var : result.var.clone();
        Tensor saved_weight = weight.defined() ? weight.detach() : Tensor();
        // The activation's derivative is read off its output (the identity needs none).
        Tensor saved_output =
            activation == NormActivation::kIdentity ? Tensor() : result.output.detach();
        const bool fused = activation != NormActivation::kIdentity || residual.defined();
        return record(result.output, {x, weight, bias, residual},
                      fused ? "BatchNormActBackward" : "BatchNormBackward",
                      [x = x.detach(), saved_output, saved_weight, mean, var, eps, training,
                       activation, needed](const Tensor& grad) {
                        ops::BatchNormGrads g =
                            ops::batch_norm_act_backward(grad, x, saved_output, saved_weight, mean,
                                                         var, eps, training, activation, needed);
                        return std::vector<Tensor>{g.input, g.weight, g.bias, g.residual};
                      });
      },
      [&] {
        trace::OpCall c{trace::Op::kBatchNorm, {x}, {weight, bias, running_mean, running_var}};
        if (residual.defined()) c.inputs.push_back(residual);
        c.attributes.training = training;
        c.attributes.momentum = momentum;
        c.attributes.eps = eps;
        c.attributes.activation = activation;
        return c;
      });
}

}  // namespace ompq
