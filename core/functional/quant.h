// Autograd-aware fake quantization (quantize-dequantize), per tensor or per channel along any axis.
#pragma once

#include <cstdint>
#include <optional>

#include "core/ops/quant.h"
#include "core/tensor.h"

namespace ompq {

// round-trips x through the integer codes of `range`:
//   (clamp(round(x / scale) + zero_point, qmin, qmax) - zero_point) * scale,
// rounding half to even. scale: 0-dim (axis = nullopt) or [x.size(axis)], positive, x's dtype;
// zero_point: the same shape and dtype, integer-valued, or undefined for 0.
// Backward, the straight-through estimator (core/ops/quant_math.h): x gets the output gradient
// where the code is inside the range and 0 outside (everywhere with clip_gradient = false, as
// HAWQ-V3); scale gets the LSQ step-size gradient; the zero point gets none.
Tensor fake_quantize(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                     std::optional<int64_t> axis, QuantRange range, bool clip_gradient = true);

}  // namespace ompq
