#include "core/ops/integer.h"

#include <vector>

#include "core/ops/conv.h"
#include "core/ops/pack.h"
#include "core/ops/quant_math.h"

namespace ompq {

DispatchStub<IntConv2dKernel> int_conv2d_stub("int_conv2d");
DispatchStub<PackedConv2dKernel> packed_conv2d_stub("packed_conv2d");

namespace ops {
namespace {

constexpr int64_t kMaxZeroPoint = 32000;

void check_codes(const Tensor& t, const char* what, const char* op) {
  OMPQ_CHECK(t.dtype() == DType::kI8 || t.dtype() == DType::kU8, op, ": ", what, " of dtype ",
             dtype_name(t.dtype()), " and shape ", shape_str(t.shape()),
             " (expected i8 or u8 codes)");
}

void check_packed_weight(const PackedWeight& w, const Tensor& x, const char* op) {
  OMPQ_CHECK(w.bits >= 2 && w.bits <= 8, op, ": bits = ", w.bits, " (expected 2..8)");
  const int64_t qmax = w.qmin + (int64_t{1} << w.bits) - 1;
  OMPQ_CHECK((w.qmin >= -128 && qmax <= 127) || (w.qmin >= 0 && qmax <= 255), op,
             ": weight codes [", w.qmin, ", ", qmax, "] fit neither i8 nor u8");
  OMPQ_CHECK(w.shape.size() == 4 && w.shape[0] > 0, op, ": weight shape ", shape_str(w.shape),
             " (expected [O, C/groups, kh, kw])");
  const int64_t rows = w.shape[0], count = shape_numel(w.shape) / rows;
  OMPQ_CHECK(w.packed.defined() && w.packed.dtype() == DType::kU8 &&
                 w.packed.shape() == Shape({rows, packed_row_bytes(count, w.bits)}),
             op, ": packed weight of shape ",
             w.packed.defined() ? shape_str(w.packed.shape()) : "undefined", " and dtype ",
             w.packed.defined() ? dtype_name(w.packed.dtype()) : "none", " (expected u8 [", rows,
             ", ", packed_row_bytes(count, w.bits), "] for ", count, " codes of ", w.bits,
             " bits per row)");
  check_same_device(x, w.packed, op);
  if (w.zero_point.defined()) {
    OMPQ_CHECK(w.zero_point.dtype() == DType::kI32 && w.zero_point.shape() == Shape{rows}, op,
               ": weight zero point of shape ", shape_str(w.zero_point.shape()), " and dtype ",
               dtype_name(w.zero_point.dtype()), " (expected i32 [", rows, "])");
    check_same_device(x, w.zero_point, op);
  }
}

void check_requantization(const Requantization& r, int64_t out_channels, const Tensor& x,
                          const char* op) {
  OMPQ_CHECK(r.range.qmin < r.range.qmax && code_dtype(r.range) != DType::kI32, op,
             ": requantization range [", r.range.qmin, ", ", r.range.qmax,
             "] (expected a non-empty range of 8-bit codes)");
  OMPQ_CHECK(r.multiplier.defined() && r.multiplier.dtype() == DType::kF32 &&
                 r.multiplier.shape() == Shape{out_channels},
             op, ": requantization multiplier of shape ",
             r.multiplier.defined() ? shape_str(r.multiplier.shape()) : "undefined",
             " (expected f32 [", out_channels, "])");
  check_same_device(x, r.multiplier, op);
  if (r.offset.defined()) {
    OMPQ_CHECK(r.offset.dtype() == DType::kF32 && r.offset.shape() == Shape{out_channels}, op,
               ": requantization offset of shape ", shape_str(r.offset.shape()), " and dtype ",
               dtype_name(r.offset.dtype()), " (expected f32 [", out_channels, "])");
    check_same_device(x, r.offset, op);
  }
}

// The permutation from a weight's dims to packed weight order ([O, kh, kw, C/groups]), and back.
const std::vector<int64_t> kConvToPacked = {0, 2, 3, 1}, kPackedToConv = {0, 3, 1, 2};

void check_weight_rank(const Shape& shape, const char* op) {
  OMPQ_CHECK(shape.size() == 2 || shape.size() == 4, op, ": weight of shape ", shape_str(shape),
             " (expected [O, K] or [O, C/groups, kh, kw])");
}

}  // namespace

Tensor pack_weight_codes(const Tensor& codes, int bits, int64_t qmin) {
  check_weight_rank(codes.shape(), "pack_weight_codes");
  return pack_codes(codes.dim() == 4 ? codes.permute(kConvToPacked).contiguous() : codes, bits,
                    qmin);
}

Tensor unpack_weight_codes(const Tensor& packed, const Shape& weight_shape, int bits, int64_t qmin,
                           DType dtype) {
  check_weight_rank(weight_shape, "unpack_weight_codes");
  const Tensor rows =
      unpack_codes(packed, shape_numel(weight_shape) / weight_shape[0], bits, qmin, dtype);
  if (weight_shape.size() == 2) return rows.view(weight_shape);
  return rows.view({weight_shape[0], weight_shape[2], weight_shape[3], weight_shape[1]})
      .permute(kPackedToConv)
      .contiguous();
}

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

Tensor packed_conv2d(const Tensor& x, int64_t x_zero_point, const PackedWeight& w,
                     const Conv2dParams& p, const std::optional<Requantization>& requant) {
  check_codes(x, "input", "packed_conv2d");
  const int64_t x_lo = x.dtype() == DType::kI8 ? -128 : 0;
  OMPQ_CHECK(x_zero_point >= x_lo && x_zero_point <= x_lo + 255, "packed_conv2d: input zero point ",
             x_zero_point, " is not a code of the input's dtype ", dtype_name(x.dtype()));
  check_packed_weight(w, x, "packed_conv2d");
  const Shape out_shape = conv2d_output_shape(x.shape(), w.shape, p);
  if (requant) check_requantization(*requant, w.shape[0], x, "packed_conv2d");
  // The CUDA kernels take channels_last inputs as they are (a pixel's channels are one vector
  // load) and write the output in the same layout; the CPU kernel indexes NCHW.
  const bool channels_last = x.device().is_cuda() && is_channels_last(x);
  Tensor out = empty_nchw(out_shape, channels_last,
                          requant ? code_dtype(requant->range) : DType::kI32, x.device());
  if (out.numel() == 0) return out;
  packed_conv2d_stub(x.device(), out, channels_last ? x : x.contiguous(), x_zero_point, w, p,
                     requant);
  return out;
}

Tensor packed_linear(const Tensor& x, int64_t x_zero_point, const PackedWeight& w,
                     const std::optional<Requantization>& requant) {
  OMPQ_CHECK(x.dim() == 2 && w.shape.size() == 2 && x.size(1) == w.shape[1],
             "packed_linear: input of shape ", shape_str(x.shape()), " and weight of shape ",
             shape_str(w.shape), " (expected [M, K] and [O, K])");
  PackedWeight conv_weight = w;
  conv_weight.shape = {w.shape[0], w.shape[1], 1, 1};
  Tensor out = packed_conv2d(x.contiguous().view({x.size(0), x.size(1), 1, 1}), x_zero_point,
                             conv_weight, {}, requant);
  return out.view({x.size(0), w.shape[0]});
}

}  // namespace ops
}  // namespace ompq
