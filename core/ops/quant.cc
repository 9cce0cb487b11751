#include "core/ops/quant.h"

#include "core/ops/elementwise.h"

namespace ompq {

DispatchStub<FakeQuantKernel> fake_quantize_stub("fake_quantize");
DispatchStub<FakeQuantErrorKernel> fake_quantize_error_stub("fake_quantize_error");
DispatchStub<FakeQuantBackwardKernel> fake_quantize_backward_stub("fake_quantize_backward");
DispatchStub<QuantizeKernel> quantize_stub("quantize");
DispatchStub<DequantizeKernel> dequantize_stub("dequantize");
DispatchStub<RequantizeKernel> requantize_stub("requantize");

DType code_dtype(QuantRange range) {
  if (range.qmin >= -128 && range.qmax <= 127) return DType::kI8;
  if (range.qmin >= 0 && range.qmax <= 255) return DType::kU8;
  return DType::kI32;
}

namespace ops {
namespace {

bool is_code_dtype(DType dtype) {
  return dtype == DType::kI8 || dtype == DType::kU8 || dtype == DType::kI32;
}

void check_range(QuantRange range, const char* op) {
  OMPQ_CHECK(range.qmin < range.qmax, op, ": empty code range [", range.qmin, ", ", range.qmax,
             "] (expected qmin < qmax)");
  OMPQ_CHECK(range.qmin >= INT32_MIN && range.qmax <= INT32_MAX, op, ": code range [", range.qmin,
             ", ", range.qmax, "] does not fit in int32");
}

// A per-channel vector argument (scale, zero point, bias, multiplier, offset): its shape must be
// scale's, its dtype `dtype`, its device x's.
void check_vector(const Tensor& v, const char* what, const Shape& shape, DType dtype, Device device,
                  const char* op) {
  OMPQ_CHECK(v.shape() == shape, op, ": ", what, " of shape ", shape_str(v.shape()), " (expected ",
             shape_str(shape), ")");
  OMPQ_CHECK(v.dtype() == dtype, op, ": ", what, " of dtype ", dtype_name(v.dtype()), " (expected ",
             dtype_name(dtype), ")");
  OMPQ_CHECK(v.device() == device, op, ": ", what, " on ", v.device().str(), " (expected ",
             device.str(), ")");
}

Tensor contiguous_or_undefined(const Tensor& t) {
  return t.defined() ? t.detach().contiguous() : Tensor();
}

}  // namespace

ChannelLayout quant_layout(const Shape& x_shape, const Tensor& scale, const Tensor& zero_point,
                           std::optional<int64_t> axis, const char* op) {
  OMPQ_CHECK(scale.defined(), op, ": scale is undefined");
  ChannelLayout layout;
  if (!axis) {
    OMPQ_CHECK(scale.dim() == 0, op, ": per-tensor quantization needs a 0-dim scale, got shape ",
               shape_str(scale.shape()));
    layout.inner = shape_numel(x_shape);
  } else {
    const int64_t ndim = static_cast<int64_t>(x_shape.size());
    OMPQ_CHECK(ndim > 0, op, ": per-channel quantization of a 0-dim tensor");
    const int64_t a = wrap_dim(*axis, ndim, op);
    OMPQ_CHECK(scale.shape() == Shape{x_shape[a]}, op, ": per-channel scale of shape ",
               shape_str(scale.shape()), " for axis ", *axis, " of a tensor of shape ",
               shape_str(x_shape), " (expected [", x_shape[a], "])");
    layout.channels = x_shape[a];
    for (int64_t d = 0; d < a; ++d) layout.outer *= x_shape[d];
    for (int64_t d = a + 1; d < ndim; ++d) layout.inner *= x_shape[d];
  }
  OMPQ_CHECK(
      is_floating(scale.dtype()) && scale.dtype() != DType::kBF16 && scale.dtype() != DType::kF16,
      op, ": scale of dtype ", dtype_name(scale.dtype()), " (expected f32 or f64)");
  if (zero_point.defined()) {
    check_vector(zero_point, "zero_point", scale.shape(), scale.dtype(), scale.device(), op);
  }
  return layout;
}

Tensor fake_quantize(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                     std::optional<int64_t> axis, QuantRange range) {
  check_range(range, "fake_quantize");
  ChannelLayout layout = quant_layout(x.shape(), scale, zero_point, axis, "fake_quantize");
  check_same_dtype(x, scale, "fake_quantize");
  check_same_device(x, scale, "fake_quantize");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.numel() == 0) return out;
  fake_quantize_stub(x.device(), out, x.detach().contiguous(), scale.detach().contiguous(),
                     contiguous_or_undefined(zero_point), layout, range);
  return out;
}

Tensor fake_quantize_error(const Tensor& x, const Tensor& scales, const Tensor& zero_points,
                           std::optional<int64_t> axis, QuantRange range, double p) {
  check_range(range, "fake_quantize_error");
  OMPQ_CHECK(scales.defined() && scales.dim() == (axis ? 2 : 1),
             "fake_quantize_error: candidate scales of shape ",
             scales.defined() ? shape_str(scales.shape()) : "undefined", " (expected ",
             axis ? "[K, C]" : "[K]", ")");
  OMPQ_CHECK(x.numel() > 0, "fake_quantize_error: empty input of shape ", shape_str(x.shape()));
  // The layout check of one candidate stands for all.
  ChannelLayout layout = quant_layout(x.shape(), scales.select(0, 0),
                                      zero_points.defined() ? zero_points.select(0, 0) : Tensor(),
                                      axis, "fake_quantize_error");
  if (zero_points.defined()) {
    check_vector(zero_points, "zero_points", scales.shape(), scales.dtype(), scales.device(),
                 "fake_quantize_error");
  }
  check_same_dtype(x, scales, "fake_quantize_error");
  check_same_device(x, scales, "fake_quantize_error");
  const int64_t candidates = scales.size(0);
  Tensor errors = Tensor::empty({candidates, layout.channels}, DType::kF64, x.device());
  fake_quantize_error_stub(x.device(), errors, x.detach().contiguous(),
                           scales.detach().contiguous(), contiguous_or_undefined(zero_points),
                           layout, range, p);
  const double per_channel = static_cast<double>(layout.outer * layout.inner);
  Tensor mean = div(errors, per_channel);
  return axis ? mean : mean.view({candidates});
}

FakeQuantGradients fake_quantize_backward(const Tensor& grad_output, const Tensor& x,
                                          const Tensor& scale, const Tensor& zero_point,
                                          std::optional<int64_t> axis, QuantRange range, bool clip,
                                          bool need_input, bool need_scale) {
  check_range(range, "fake_quantize_backward");
  ChannelLayout layout = quant_layout(x.shape(), scale, zero_point, axis, "fake_quantize_backward");
  OMPQ_CHECK(grad_output.shape() == x.shape(), "fake_quantize_backward: grad_output of shape ",
             shape_str(grad_output.shape()), " for an input of shape ", shape_str(x.shape()));
  check_same_dtype(grad_output, x, "fake_quantize_backward");
  check_same_dtype(x, scale, "fake_quantize_backward");
  FakeQuantGradients grads;
  if (need_input) grads.input = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (need_scale) grads.scale = Tensor::zeros(scale.shape(), scale.dtype(), scale.device());
  if (x.numel() == 0 || (!need_input && !need_scale)) return grads;
  fake_quantize_backward_stub(x.device(), grads.input, grads.scale,
                              grad_output.detach().contiguous(), x.detach().contiguous(),
                              scale.detach().contiguous(), contiguous_or_undefined(zero_point),
                              layout, range, clip);
  return grads;
}

Tensor quantize(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                std::optional<int64_t> axis, QuantRange range) {
  check_range(range, "quantize");
  ChannelLayout layout = quant_layout(x.shape(), scale, zero_point, axis, "quantize");
  check_same_dtype(x, scale, "quantize");
  check_same_device(x, scale, "quantize");
  Tensor codes = Tensor::empty(x.shape(), code_dtype(range), x.device());
  if (x.numel() == 0) return codes;
  quantize_stub(x.device(), codes, x.detach().contiguous(), scale.detach().contiguous(),
                contiguous_or_undefined(zero_point), layout, range);
  return codes;
}

Tensor dequantize(const Tensor& codes, const Tensor& scale, const Tensor& zero_point,
                  std::optional<int64_t> axis, const Tensor& bias) {
  OMPQ_CHECK(is_code_dtype(codes.dtype()), "dequantize: codes of dtype ", dtype_name(codes.dtype()),
             " (expected i8, u8 or i32)");
  ChannelLayout layout = quant_layout(codes.shape(), scale, zero_point, axis, "dequantize");
  check_same_device(codes, scale, "dequantize");
  if (bias.defined()) {
    check_vector(bias, "bias", Shape{layout.channels}, scale.dtype(), scale.device(), "dequantize");
  }
  Tensor out = Tensor::empty(codes.shape(), scale.dtype(), codes.device());
  if (codes.numel() == 0) return out;
  dequantize_stub(codes.device(), out, codes.contiguous(), scale.detach().contiguous(),
                  contiguous_or_undefined(zero_point), contiguous_or_undefined(bias), layout);
  return out;
}

Tensor requantize(const Tensor& acc, const Tensor& multiplier, const Tensor& offset,
                  int64_t zero_point, int64_t axis, QuantRange range) {
  check_range(range, "requantize");
  const DType dtype = code_dtype(range);
  OMPQ_CHECK(dtype != DType::kI32, "requantize: code range [", range.qmin, ", ", range.qmax,
             "] does not fit in 8 bits");
  OMPQ_CHECK(acc.dtype() == DType::kI32, "requantize: accumulators of dtype ",
             dtype_name(acc.dtype()), " (expected i32)");
  OMPQ_CHECK(multiplier.dim() == 1 && multiplier.dtype() == DType::kF32,
             "requantize: multiplier of shape ", shape_str(multiplier.shape()), " and dtype ",
             dtype_name(multiplier.dtype()), " (expected a 1-dim f32 tensor)");
  ChannelLayout layout = quant_layout(acc.shape(), multiplier, Tensor(), axis, "requantize");
  check_same_device(acc, multiplier, "requantize");
  if (offset.defined()) {
    check_vector(offset, "offset", multiplier.shape(), DType::kF32, multiplier.device(),
                 "requantize");
  }
  Tensor codes = Tensor::empty(acc.shape(), dtype, acc.device());
  if (acc.numel() == 0) return codes;
  requantize_stub(acc.device(), codes, acc.contiguous(), multiplier.detach().contiguous(),
                  contiguous_or_undefined(offset), zero_point, layout, range);
  return codes;
}

}  // namespace ops
}  // namespace ompq
