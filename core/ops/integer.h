// Integer convolution and linear layers on quantized codes with int32 accumulation (raw: no
// autograd): the exact part of integer inference. With x = (x_code - x_zero_point) * s_x and
// w[o] = (w_code - w_zero_point[o]) * s_w[o],
//   acc[n, o, ...] = sum over the window of (x_code - x_zero_point) * (w_code[o] - w_zero_point[o])
// so that conv(x, w)[n, o] = acc * s_x * s_w[o] exactly up to the final rounding (see
// ops::dequantize and ops::requantize in core/ops/quant.h). Zero padding pads real zeros, i.e.
// centred codes of 0. Centred codes must fit in int16 (|zero points| <= 32000 keeps them there) and
// every sum in int32 (it does for windows under 33,000 products of 8-bit codes).
#pragma once

#include <cstdint>
#include <optional>

#include "core/dispatch.h"
#include "core/ops/conv.h"
#include "core/ops/quant.h"
#include "core/tensor.h"

namespace ompq {

// out: i32 [N, O, OH, OW]; x: contiguous NCHW codes (i8 or u8); w: contiguous [O, C/groups, kh,
// kw] codes (i8 or u8); w_zero_point: contiguous i32 [O] or undefined (0).
using IntConv2dKernel = void(const Tensor& out, const Tensor& x, int64_t x_zero_point,
                             const Tensor& w, const Tensor& w_zero_point, const Conv2dParams& p);
extern DispatchStub<IntConv2dKernel> int_conv2d_stub;

// A weight stored as packed integer codes (ops::pack_weight_codes): row o of `packed` holds output
// channel o's K = numel / O codes in packed weight order, each as code - qmin in `bits` bits.
struct PackedWeight {
  Tensor packed;      // u8 [O, ceil(K * bits / 8)], rows in packed weight order
  Shape shape;        // the weight's shape, [O, C/groups, kh, kw]
  int bits = 8;       // 2..8
  int64_t qmin = 0;   // the codes' range starts here: [qmin, qmin + 2^bits - 1] (i8 or u8)
  Tensor zero_point;  // i32 [O] or undefined (0)
};

// The requantization fused into a packed layer: output code = requantize_value(acc,
// multiplier[o], offset[o], zero_point, range) (core/ops/quant_math.h), as ops::requantize.
struct Requantization {
  Tensor multiplier;  // f32 [O]
  Tensor offset;      // f32 [O] or undefined (0)
  int64_t zero_point = 0;
  QuantRange range;  // 8-bit at most: the codes are i8 or u8
};

// out: [N, O, OH, OW], i32 accumulators (requant empty) or codes of code_dtype(requant->range);
// x: codes (i8 or u8), contiguous NCHW on the CPU; on CUDA also channels_last, and out then is
// channels_last too.
using PackedConv2dKernel = void(const Tensor& out, const Tensor& x, int64_t x_zero_point,
                                const PackedWeight& w, const Conv2dParams& p,
                                const std::optional<Requantization>& requant);
extern DispatchStub<PackedConv2dKernel> packed_conv2d_stub;

namespace ops {

// Packed weight order: a conv weight [O, C/groups, kh, kw] is packed as [O, kh, kw, C/groups], so
// that a row runs over the kernel taps with each tap's channels contiguous, as they are in a
// channels_last input: the GPU's implicit GEMM then loads a tap's channels as whole vectors. A
// linear weight [O, K] (and a 1x1 or depthwise conv, where both orders agree) is packed as it is.
// codes: [O, C/groups, kh, kw] or [O, K] integer codes in [qmin, qmin + 2^bits - 1]. Returns u8
// [O, ceil(K * bits / 8)] (ops::pack_codes of the rows in packed weight order).
Tensor pack_weight_codes(const Tensor& codes, int bits, int64_t qmin);
// The inverse: codes of `weight_shape` ([O, C/groups, kh, kw] or [O, K]) and `dtype` (i8, u8 or
// i32), contiguous, in the weight's own order.
Tensor unpack_weight_codes(const Tensor& packed, const Shape& weight_shape, int bits, int64_t qmin,
                           DType dtype);

// x [N, C, H, W] and weight [O, C/groups, kh, kw] codes (i8 or u8), w_zero_point i32 [O] or
// undefined; PyTorch's conv2d geometry. Returns i32 [N, O, OH, OW].
Tensor int_conv2d(const Tensor& x, int64_t x_zero_point, const Tensor& w,
                  const Tensor& w_zero_point, const Conv2dParams& p);
// x [M, K], weight [O, K] codes -> i32 [M, O].
Tensor int_linear(const Tensor& x, int64_t x_zero_point, const Tensor& w,
                  const Tensor& w_zero_point);

// int_conv2d on a packed weight, optionally requantized in the same pass: the low-bit inference
// kernel. x_zero_point must be a code of x's dtype (the GPU pads with it). On the CPU this is
// unpack_weight_codes + int_conv2d + requantize, the reference the CUDA kernels equal bit for bit.
// Returns i32 accumulators [N, O, OH, OW], or codes of code_dtype(requant->range).
Tensor packed_conv2d(const Tensor& x, int64_t x_zero_point, const PackedWeight& w,
                     const Conv2dParams& p,
                     const std::optional<Requantization>& requant = std::nullopt);
// x [M, K] codes, w.shape [O, K] -> [M, O].
Tensor packed_linear(const Tensor& x, int64_t x_zero_point, const PackedWeight& w,
                     const std::optional<Requantization>& requant = std::nullopt);

}  // namespace ops
}  // namespace ompq
