#include "core/functional/conv.h"

#include "core/autocast.h"
#include "core/autograd.h"
#include "core/trace.h"

namespace ompq {

Tensor conv2d(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias,
              const Conv2dParams& p) {
  return trace::traced(
      [&]() -> Tensor {
        // Under autocast x and weight are cast to the low-precision dtype (autograd-aware: their
        // gradients come back in their own dtype); the output is f32 with the f32 bias, or in
        // inference with low-precision activations the operands' dtype, and so is the bias.
        const Tensor x = autocast_cast(x_in), weight = autocast_cast(weight_in);
        const bool records_grad = any_requires_grad({x, weight, bias});
        const DType out_dtype = autocast_conv_output_dtype(x.dtype(), x.device(), records_grad);
        const Tensor b = out_dtype == x.dtype() ? autocast_cast(bias) : bias;
        Tensor out = ops::conv2d(x, weight, b, p, out_dtype);
        if (!records_grad) return out;
        // The input gradient of a first layer is never needed: skip its (large) transposed
        // convolution.
        const bool need_weight = weight.requires_grad() || (bias.defined() && bias.requires_grad());
        const std::array<bool, 3> needed = {x.requires_grad(), need_weight,
                                            need_weight && bias.defined()};
        return record(out, {x, weight, bias}, "Conv2dBackward",
                      [x = x.detach(), weight = weight.detach(), p, needed](const Tensor& grad) {
                        Conv2dGrads g = ops::conv2d_backward(grad, x, weight, needed, p);
                        return std::vector<Tensor>{g.input, g.weight, g.bias};
                      });
      },
      [&] {
        trace::OpCall c{trace::Op::kConv2d, {x_in}, {weight_in, bias}};
        c.attributes.conv = p;
        return c;
      });
}

}  // namespace ompq
