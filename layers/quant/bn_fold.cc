#include "layers/quant/bn_fold.h"

#include "core/functional/elementwise.h"
#include "core/ops/elementwise.h"

namespace ompq::nn {

FoldedWeights fold_batch_norm(const Tensor& weight, const Tensor& bias, const Tensor& gamma,
                              const Tensor& beta, const Tensor& running_mean,
                              const Tensor& running_var, double eps) {
  OMPQ_CHECK(weight.dim() >= 1, "fold_batch_norm: weight of shape ", shape_str(weight.shape()));
  const int64_t channels = weight.size(0);
  const Shape vector_shape = {channels};
  for (const auto& [what, t] : {std::pair<const char*, const Tensor&>{"bias", bias},
                                {"gamma", gamma},
                                {"beta", beta},
                                {"running_mean", running_mean},
                                {"running_var", running_var}}) {
    OMPQ_CHECK(!t.defined() || t.shape() == vector_shape, "fold_batch_norm: ", what, " of shape ",
               shape_str(t.shape()), " for a weight of shape ", shape_str(weight.shape()),
               " (expected [", channels, "])");
  }
  OMPQ_CHECK(running_mean.defined() && running_var.defined(),
             "fold_batch_norm: the running statistics are undefined");
  const DType dtype = weight.dtype();
  const Tensor invstd = ops::rdiv(ops::sqrt(ops::add(running_var.detach().to(dtype), eps)), 1.0);
  const Tensor factor = gamma.defined() ? mul(gamma.to(dtype), invstd) : invstd;
  Shape broadcast(weight.dim(), 1);
  broadcast[0] = channels;
  FoldedWeights folded;
  folded.weight = mul(weight, factor.reshape(broadcast));
  const Tensor mean = running_mean.detach().to(dtype);
  const Tensor centred = bias.defined() ? sub(bias, mean) : neg(mean);
  folded.bias = mul(centred, factor);
  if (beta.defined()) folded.bias = add(folded.bias, beta.to(dtype));
  return folded;
}

FoldedWeights fold_batch_norm(const Tensor& weight, const Tensor& bias, const BatchNorm& bn) {
  return fold_batch_norm(weight, bias, bn.weight(), bn.bias(), bn.running_mean(), bn.running_var(),
                         bn.options().eps);
}

}  // namespace ompq::nn
