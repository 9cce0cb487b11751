#include "core/ops/integer.h"

namespace ompq {

DispatchStub<IntConv2dKernel> int_conv2d_stub("int_conv2d");

namespace ops {
namespace {

constexpr int64_t kMaxZeroPoint = 32000;

void check_codes(const Tensor& t, const char* what, const char* op) {
  OMPQ_CHECK(t.dtype() == DType::kI8 || t.dtype() == DType::kU8, op, ": ", what, " of dtype ",
             dtype_name(t.dtype()), " and shape ", shape_str(t.shape()),
             " (expected i8 or u8 codes)");
}

}  // namespace

Tensor int_conv2d(const Tensor& x, int64_t x_zero_point, const Tensor& w,
                  const Tensor& w_zero_point, const Conv2dParams& p) {
  check_codes(x, "input", "int_conv2d");
  check_codes(w, "weight", "int_conv2d");
  check_same_device(x, w, "int_conv2d");
  OMPQ_CHECK(x_zero_point >= -kMaxZeroPoint && x_zero_point <= kMaxZeroPoint,
             "int_conv2d: input zero point ", x_zero_point, " outside [", -kMaxZeroPoint, ", ",
             kMaxZeroPoint, "]");
  const Shape out_shape = conv2d_output_shape(x.shape(), w.shape(), p);
  if (w_zero_point.defined()) {
    OMPQ_CHECK(w_zero_point.dtype() == DType::kI32 && w_zero_point.shape() == Shape{w.size(0)},
               "int_conv2d: weight zero point of shape ", shape_str(w_zero_point.shape()),
               " and dtype ", dtype_name(w_zero_point.dtype()), " (expected i32 [", w.size(0),
               "])");
    check_same_device(w, w_zero_point, "int_conv2d");
  }
  Tensor out = Tensor::empty(out_shape, DType::kI32, x.device());
  if (out.numel() == 0) return out;
  int_conv2d_stub(x.device(), out, x.contiguous(), x_zero_point, w.contiguous(),
                  w_zero_point.defined() ? w_zero_point.contiguous() : Tensor(), p);
  return out;
}

Tensor int_linear(const Tensor& x, int64_t x_zero_point, const Tensor& w,
                  const Tensor& w_zero_point) {
  OMPQ_CHECK(x.dim() == 2 && w.dim() == 2 && x.size(1) == w.size(1), "int_linear: input of shape ",
             shape_str(x.shape()), " and weight of shape ", shape_str(w.shape()),
             " (expected [M, K] and [O, K])");
  // A linear layer is a 1x1 convolution of a 1x1 image with K channels.
  Tensor out = int_conv2d(x.contiguous().view({x.size(0), x.size(1), 1, 1}), x_zero_point,
                          w.contiguous().view({w.size(0), w.size(1), 1, 1}), w_zero_point, {});
  return out.view({x.size(0), w.size(0)});
}

}  // namespace ops
}  // namespace ompq
