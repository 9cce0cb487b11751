// Uniform affine quantization (raw: no autograd): fake quantization and its straight-through
// gradients, quantization to integer codes, dequantization, and requantization of int32
// accumulators. The per-element math is core/ops/quant_math.h.
//
// Scale and zero point are per tensor (0-dim tensors) or per channel ([C] tensors for C = the size
// of dim `axis` of x, any axis). Scales are positive and of x's floating dtype; zero points are
// integer-valued values of the same dtype, or undefined for 0 (symmetric quantization).
// Kernels see every tensor as a contiguous [outer, C, inner] array (C = 1 per tensor) and
// per-channel [C] vectors.
#pragma once

#include <cstdint>
#include <optional>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace ompq {

// x viewed as [outer, channels, inner] around the quantization axis.
struct ChannelLayout {
  int64_t outer = 1;
  int64_t channels = 1;
  int64_t inner = 1;
};

// Integer code range [qmin, qmax].
struct QuantRange {
  int64_t qmin = 0;
  int64_t qmax = 0;
};

// out = fake_quantize_value(x) per element.
using FakeQuantKernel = void(const Tensor& out, const Tensor& x, const Tensor& scale,
                             const Tensor& zero_point, const ChannelLayout& layout,
                             QuantRange range);
// grad_input (when defined) and grad_scale ([C], when defined: the gradient summed over each
// channel, in double, in an order fixed by the layout) from fake_quantize_grads.
using FakeQuantBackwardKernel = void(const Tensor& grad_input, const Tensor& grad_scale,
                                     const Tensor& grad_output, const Tensor& x,
                                     const Tensor& scale, const Tensor& zero_point,
                                     const ChannelLayout& layout, QuantRange range, bool clip);
// codes (i8, u8 or i32) = quantize_value(x).
using QuantizeKernel = void(const Tensor& codes, const Tensor& x, const Tensor& scale,
                            const Tensor& zero_point, const ChannelLayout& layout,
                            QuantRange range);
// out = (codes - zero_point) * scale + bias; codes i8, u8 or i32; bias [C] or undefined.
using DequantizeKernel = void(const Tensor& out, const Tensor& codes, const Tensor& scale,
                              const Tensor& zero_point, const Tensor& bias,
                              const ChannelLayout& layout);
// codes (i8 or u8) = requantize_value(acc (i32), multiplier [C], offset [C] or undefined).
using RequantizeKernel = void(const Tensor& codes, const Tensor& acc, const Tensor& multiplier,
                              const Tensor& offset, int64_t zero_point, const ChannelLayout& layout,
                              QuantRange range);
// errors [K, C] (f64) = sum over channel c's elements of fake_quantize_lp_error with candidate k's
// scale and zero point (scales, zero_points: [K, C] of x's dtype; zero_points may be undefined).
using FakeQuantErrorKernel = void(const Tensor& errors, const Tensor& x, const Tensor& scales,
                                  const Tensor& zero_points, const ChannelLayout& layout,
                                  QuantRange range, double p);
extern DispatchStub<FakeQuantKernel> fake_quantize_stub;
extern DispatchStub<FakeQuantErrorKernel> fake_quantize_error_stub;
extern DispatchStub<FakeQuantBackwardKernel> fake_quantize_backward_stub;
extern DispatchStub<QuantizeKernel> quantize_stub;
extern DispatchStub<DequantizeKernel> dequantize_stub;
extern DispatchStub<RequantizeKernel> requantize_stub;

// The smallest integer dtype holding every code of `range`: i8, u8 or i32.
DType code_dtype(QuantRange range);

namespace ops {

// Checks x, scale, zero_point and the axis (nullopt: per tensor, scale 0-dim; else per channel
// along `axis`, negative counting from the end, scale [x.size(axis)]) and returns the layout.
// `op` names the caller in messages.
ChannelLayout quant_layout(const Shape& x_shape, const Tensor& scale, const Tensor& zero_point,
                           std::optional<int64_t> axis, const char* op);

// Quantize-dequantize x (f32/f64) in `range`; the result has x's shape and dtype.
Tensor fake_quantize(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                     std::optional<int64_t> axis, QuantRange range);

// Scores K candidate quantizers at once (BRECQ's range search): mean over each channel of
// |x - fake_quantize(x)|^p for candidate k's scales[k] and zero_points[k] ([K, C] per channel along
// `axis`, [K] per tensor; zero_points undefined for symmetric candidates). Returns f64 [K, C]
// ([K] per tensor).
Tensor fake_quantize_error(const Tensor& x, const Tensor& scales, const Tensor& zero_points,
                           std::optional<int64_t> axis, QuantRange range, double p);

struct FakeQuantGradients {
  Tensor input;  // x's shape; undefined unless requested
  Tensor scale;  // scale's shape; undefined unless requested
};
// The straight-through gradients of fake_quantize (see fake_quantize_grads in quant_math.h).
FakeQuantGradients fake_quantize_backward(const Tensor& grad_output, const Tensor& x,
                                          const Tensor& scale, const Tensor& zero_point,
                                          std::optional<int64_t> axis, QuantRange range, bool clip,
                                          bool need_input, bool need_scale);

// The integer codes of x, of dtype code_dtype(range). Non-finite x has no code (undefined).
Tensor quantize(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                std::optional<int64_t> axis, QuantRange range);
// Real values of integer codes (i8, u8 or i32), of scale's dtype: (codes - zero_point) * scale,
// plus bias ([C] along axis, of scale's dtype) when defined.
Tensor dequantize(const Tensor& codes, const Tensor& scale, const Tensor& zero_point,
                  std::optional<int64_t> axis, const Tensor& bias = Tensor());
// Codes (code_dtype(range), i8 or u8) of int32 accumulators acc [outer.., C, inner..] scaled per
// channel along `axis`: clamp(round(acc * multiplier + offset) + zero_point). multiplier and offset
// are f32 [C] (offset may be undefined).
Tensor requantize(const Tensor& acc, const Tensor& multiplier, const Tensor& offset,
                  int64_t zero_point, int64_t axis, QuantRange range);

}  // namespace ops
}  // namespace ompq
