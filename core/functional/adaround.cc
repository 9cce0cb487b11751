#include "core/functional/adaround.h"

#include "core/autograd.h"
#include "core/ops/adaround.h"

namespace ompq {

Tensor adaround_quantize(const Tensor& w, const Tensor& alpha, const Tensor& scale,
                         const Tensor& zero_point, std::optional<int64_t> axis, QuantRange range,
                         bool hard) {
  Tensor out = ops::adaround_quantize(w, alpha, scale, zero_point, axis, range, hard);
  if (hard) return out;
  // The grid is snapshotted: quantizers may rewrite scale and zero point in place before backward.
  return record(out, {alpha}, "AdaRoundQuantizeBackward",
                [w = w.detach(), alpha = alpha.detach(), scale = scale.detach().clone(),
                 zero_point = zero_point.defined() ? zero_point.detach().clone() : Tensor(), axis,
                 range](const Tensor& grad) {
                  return std::vector<Tensor>{ops::adaround_quantize_backward(
                      grad, w, alpha, scale, zero_point, axis, range)};
                });
}

Tensor adaround_regularizer(const Tensor& alpha, double beta) {
  Tensor out = ops::adaround_regularizer(alpha, beta);
  return record(out, {alpha}, "AdaRoundRegularizerBackward",
                [alpha = alpha.detach(), beta](const Tensor& grad) {
                  return std::vector<Tensor>{ops::adaround_regularizer_backward(grad, alpha, beta)};
                });
}

}  // namespace ompq
