#include "core/ops/adaround.h"

#include <cmath>

namespace ompq {

DispatchStub<AdaRoundInitKernel> adaround_init_stub("adaround_init");
DispatchStub<AdaRoundQuantizeKernel> adaround_quantize_stub("adaround_quantize");
DispatchStub<AdaRoundQuantizeBackwardKernel> adaround_quantize_backward_stub(
    "adaround_quantize_backward");
DispatchStub<AdaRoundRegularizerKernel> adaround_regularizer_stub("adaround_regularizer");
DispatchStub<AdaRoundRegularizerBackwardKernel> adaround_regularizer_backward_stub(
    "adaround_regularizer_backward");

namespace ops {
namespace {

// w's layout around the quantization axis, after checking scale and zero point against it and
// w's dtype and device against scale's.
ChannelLayout weight_layout(const Tensor& w, const Tensor& scale, const Tensor& zero_point,
                            std::optional<int64_t> axis, const char* op) {
  const ChannelLayout layout = quant_layout(w.shape(), scale, zero_point, axis, op);
  check_same_dtype(w, scale, op);
  check_same_device(w, scale, op);
  return layout;
}

// alpha must match w in shape, dtype and device.
void check_alpha(const Tensor& alpha, const Tensor& w, const char* op) {
  OMPQ_CHECK(alpha.defined(), op, ": alpha is undefined");
  OMPQ_CHECK(alpha.shape() == w.shape(), op, ": alpha of shape ", shape_str(alpha.shape()),
             " for a weight of shape ", shape_str(w.shape()));
  check_same_dtype(alpha, w, op);
  check_same_device(alpha, w, op);
}

void check_range(QuantRange range, const char* op) {
  OMPQ_CHECK(range.qmin < range.qmax, op, ": empty code range [", range.qmin, ", ", range.qmax,
             "] (expected qmin < qmax)");
}

void check_beta(double beta, const char* op) {
  OMPQ_CHECK(std::isfinite(beta) && beta >= 1, op, ": beta ", beta, " (expected >= 1)");
}

Tensor contiguous_or_undefined(const Tensor& t) {
  return t.defined() ? t.detach().contiguous() : Tensor();
}

}  // namespace

Tensor adaround_init(const Tensor& w, const Tensor& scale, std::optional<int64_t> axis) {
  const ChannelLayout layout = weight_layout(w, scale, Tensor(), axis, "adaround_init");
  Tensor alpha = Tensor::empty(w.shape(), w.dtype(), w.device());
  if (w.numel() == 0) return alpha;
  adaround_init_stub(w.device(), alpha, w.detach().contiguous(), scale.detach().contiguous(),
                     layout);
  return alpha;
}

Tensor adaround_quantize(const Tensor& w, const Tensor& alpha, const Tensor& scale,
                         const Tensor& zero_point, std::optional<int64_t> axis, QuantRange range,
                         bool hard) {
  check_range(range, "adaround_quantize");
  const ChannelLayout layout = weight_layout(w, scale, zero_point, axis, "adaround_quantize");
  check_alpha(alpha, w, "adaround_quantize");
  Tensor out = Tensor::empty(w.shape(), w.dtype(), w.device());
  if (w.numel() == 0) return out;
  adaround_quantize_stub(w.device(), out, w.detach().contiguous(), alpha.detach().contiguous(),
                         scale.detach().contiguous(), contiguous_or_undefined(zero_point), layout,
                         range, hard);
  return out;
}

Tensor adaround_quantize_backward(const Tensor& grad_output, const Tensor& w, const Tensor& alpha,
                                  const Tensor& scale, const Tensor& zero_point,
                                  std::optional<int64_t> axis, QuantRange range) {
  check_range(range, "adaround_quantize_backward");
  const ChannelLayout layout =
      weight_layout(w, scale, zero_point, axis, "adaround_quantize_backward");
  check_alpha(alpha, w, "adaround_quantize_backward");
  check_alpha(grad_output, w, "adaround_quantize_backward (grad_output)");
  Tensor grad_alpha = Tensor::empty(w.shape(), w.dtype(), w.device());
  if (w.numel() == 0) return grad_alpha;
  adaround_quantize_backward_stub(w.device(), grad_alpha, grad_output.detach().contiguous(),
                                  w.detach().contiguous(), alpha.detach().contiguous(),
                                  scale.detach().contiguous(), contiguous_or_undefined(zero_point),
                                  layout, range);
  return grad_alpha;
}

Tensor adaround_regularizer(const Tensor& alpha, double beta) {
  check_beta(beta, "adaround_regularizer");
  Tensor out = Tensor::zeros({}, alpha.dtype(), alpha.device());
  if (alpha.numel() == 0) return out;
  adaround_regularizer_stub(alpha.device(), out, alpha.detach().contiguous(), beta);
  return out;
}

Tensor adaround_regularizer_backward(const Tensor& grad, const Tensor& alpha, double beta) {
  check_beta(beta, "adaround_regularizer_backward");
  OMPQ_CHECK(grad.numel() == 1, "adaround_regularizer_backward: gradient of shape ",
             shape_str(grad.shape()), " (expected one element)");
  check_same_dtype(grad, alpha, "adaround_regularizer_backward");
  check_same_device(grad, alpha, "adaround_regularizer_backward");
  Tensor grad_alpha = Tensor::empty(alpha.shape(), alpha.dtype(), alpha.device());
  if (alpha.numel() == 0) return grad_alpha;
  adaround_regularizer_backward_stub(alpha.device(), grad_alpha, grad.detach().contiguous(),
                                     alpha.detach().contiguous(), beta);
  return grad_alpha;
}

}  // namespace ops
}  // namespace ompq
