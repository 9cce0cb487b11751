#include "core/functional/conv.h"

#include "core/autograd.h"

namespace ompq {

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p) {
  Tensor out = ops::conv2d(x, weight, bias, p);
  if (!any_requires_grad({x, weight, bias})) return out;
  // The input gradient of a first layer is never needed: skip its (large) transposed convolution.
  const bool need_weight = weight.requires_grad() || (bias.defined() && bias.requires_grad());
  const std::array<bool, 3> needed = {x.requires_grad(), need_weight,
                                      need_weight && bias.defined()};
  return record(out, {x, weight, bias}, "Conv2dBackward",
                [x = x.detach(), weight = weight.detach(), p, needed](const Tensor& grad) {
                  Conv2dGrads g = ops::conv2d_backward(grad, x, weight, needed, p);
                  return std::vector<Tensor>{g.input, g.weight, g.bias};
                });
}

}  // namespace ompq
