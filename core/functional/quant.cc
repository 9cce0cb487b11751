#include "core/functional/quant.h"

#include "core/autograd.h"

namespace ompq {

Tensor fake_quantize(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                     std::optional<int64_t> axis, QuantRange range, bool clip_gradient) {
  Tensor out = ops::fake_quantize(x, scale, zero_point, axis, range);
  if (!any_requires_grad({x, scale})) return out;
  const bool need_input = x.requires_grad(), need_scale = scale.requires_grad();
  // Quantizers rewrite their scale and zero point in place (range tracking, optimizer steps):
  // snapshot these per-channel vectors so that this backward sees the values the forward used.
  Tensor saved_zero_point = zero_point.defined() ? zero_point.detach().clone() : Tensor();
  return record(out, {x, scale}, "FakeQuantizeBackward",
                [x = x.detach(), scale = scale.detach().clone(), saved_zero_point, axis, range,
                 clip_gradient, need_input, need_scale](const Tensor& grad) {
                  ops::FakeQuantGradients g =
                      ops::fake_quantize_backward(grad, x, scale, saved_zero_point, axis, range,
                                                  clip_gradient, need_input, need_scale);
                  return std::vector<Tensor>{g.input, g.scale};
                });
}

}  // namespace ompq
