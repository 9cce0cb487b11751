#include "core/functional/conv.h"

#include "core/autograd.h"

namespace ompq {

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p) {
  Tensor out = ops::conv2d(x, weight, bias, p);
  if (!any_requires_grad({x, weight, bias})) return out;
  // The input gradient of a first layer is never needed: skip its (large) transposed convolution.
  const bool need_x = x.requires_grad();
  const bool need_weight = weight.requires_grad() || (bias.defined() && bias.requires_grad());
  const bool with_bias = bias.defined();
  return record(out, {x, weight, bias}, "Conv2dBackward",
                [x = x.detach(), weight = weight.detach(), p, need_x, need_weight,
                 with_bias](const Tensor& grad) {
                  std::vector<Tensor> grads(3);
                  if (need_x) grads[0] = ops::conv2d_backward_input(grad, weight, x.shape(), p);
                  if (need_weight) {
                    ops::Conv2dWeightGrads g =
                        ops::conv2d_backward_weight(grad, x, weight.shape(), with_bias, p);
                    grads[1] = g.weight;
                    grads[2] = g.bias;
                  }
                  return grads;
                });
}

}  // namespace ompq
