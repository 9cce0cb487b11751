// AdaRound (raw: no autograd): learned rounding of a weight tensor onto its quantization grid,
// the regularizer that drives the rounding variables to hard decisions, and their gradients. The
// per-element math is core/ops/adaround_math.h.
//
// w and alpha have the same shape and floating dtype; scale and zero point are per tensor (0-dim)
// or per channel along `axis` ([w.size(axis)]), as in core/ops/quant.h (which also checks them).
// Kernels see w and alpha as contiguous [outer, C, inner] arrays.
#pragma once

#include <cstdint>
#include <optional>

#include "core/dispatch.h"
#include "core/ops/quant.h"
#include "core/tensor.h"

namespace ompq {

// alpha = adaround_init_alpha(w, scale of the element's channel).
using AdaRoundInitKernel = void(const Tensor& alpha, const Tensor& w, const Tensor& scale,
                                const ChannelLayout& layout);
// out = adaround_weight_value(w, h, ...) with h = rectified_sigmoid(alpha) (soft) or
// adaround_hard_h(alpha) (hard).
using AdaRoundQuantizeKernel = void(const Tensor& out, const Tensor& w, const Tensor& alpha,
                                    const Tensor& scale, const Tensor& zero_point,
                                    const ChannelLayout& layout, QuantRange range, bool hard);
// grad_alpha = adaround_weight_grad(grad_output, w, alpha, ...) (soft mode).
using AdaRoundQuantizeBackwardKernel = void(const Tensor& grad_alpha, const Tensor& grad_output,
                                            const Tensor& w, const Tensor& alpha,
                                            const Tensor& scale, const Tensor& zero_point,
                                            const ChannelLayout& layout, QuantRange range);
// out (0-dim, alpha's dtype) = the sum of adaround_regularizer_term over alpha, accumulated in
// double in an order that does not depend on the thread count.
using AdaRoundRegularizerKernel = void(const Tensor& out, const Tensor& alpha, double beta);
// grad_alpha = grad * adaround_regularizer_grad(alpha, beta) (grad: the 0-dim output gradient).
using AdaRoundRegularizerBackwardKernel = void(const Tensor& grad_alpha, const Tensor& grad,
                                               const Tensor& alpha, double beta);
extern DispatchStub<AdaRoundInitKernel> adaround_init_stub;
extern DispatchStub<AdaRoundQuantizeKernel> adaround_quantize_stub;
extern DispatchStub<AdaRoundQuantizeBackwardKernel> adaround_quantize_backward_stub;
extern DispatchStub<AdaRoundRegularizerKernel> adaround_regularizer_stub;
extern DispatchStub<AdaRoundRegularizerBackwardKernel> adaround_regularizer_backward_stub;

namespace ops {

// The rounding variables that make soft rounding start at w's own position between grid points:
// h(alpha) = w / scale - floor(w / scale).
Tensor adaround_init(const Tensor& w, const Tensor& scale, std::optional<int64_t> axis);

// w rounded onto the grid of `range` by alpha: soft (h(alpha)) or hard (up where alpha >= 0).
Tensor adaround_quantize(const Tensor& w, const Tensor& alpha, const Tensor& scale,
                         const Tensor& zero_point, std::optional<int64_t> axis, QuantRange range,
                         bool hard);
// The gradient of soft adaround_quantize w.r.t. alpha.
Tensor adaround_quantize_backward(const Tensor& grad_output, const Tensor& w, const Tensor& alpha,
                                  const Tensor& scale, const Tensor& zero_point,
                                  std::optional<int64_t> axis, QuantRange range);

// sum(1 - |2 h(alpha) - 1|^beta), a 0-dim tensor of alpha's dtype; beta >= 1.
Tensor adaround_regularizer(const Tensor& alpha, double beta);
// Its gradient w.r.t. alpha for the 0-dim output gradient `grad`.
Tensor adaround_regularizer_backward(const Tensor& grad, const Tensor& alpha, double beta);

}  // namespace ops
}  // namespace ompq
