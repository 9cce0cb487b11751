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

#include "core/dispatch.h"
#include "core/ops/conv.h"
#include "core/tensor.h"

namespace ompq {

// out: i32 [N, O, OH, OW]; x: contiguous NCHW codes (i8 or u8); w: contiguous [O, C/groups, kh,
// kw] codes (i8 or u8); w_zero_point: contiguous i32 [O] or undefined (0).
using IntConv2dKernel = void(const Tensor& out, const Tensor& x, int64_t x_zero_point,
                             const Tensor& w, const Tensor& w_zero_point, const Conv2dParams& p);
extern DispatchStub<IntConv2dKernel> int_conv2d_stub;

namespace ops {

// x [N, C, H, W] and weight [O, C/groups, kh, kw] codes (i8 or u8), w_zero_point i32 [O] or
// undefined; PyTorch's conv2d geometry. Returns i32 [N, O, OH, OW].
Tensor int_conv2d(const Tensor& x, int64_t x_zero_point, const Tensor& w,
                  const Tensor& w_zero_point, const Conv2dParams& p);
// x [M, K], weight [O, K] codes -> i32 [M, O].
Tensor int_linear(const Tensor& x, int64_t x_zero_point, const Tensor& w,
                  const Tensor& w_zero_point);

}  // namespace ops
}  // namespace ompq
