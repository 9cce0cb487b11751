// Autograd-aware AdaRound (core/ops/adaround.h): the weight rounded by learned rounding variables
// and the regularizer that anneals them to hard decisions. Only alpha gets gradients: w enters
// through floor(w / scale), which has none, and the grid (scale, zero point) is fixed.
#pragma once

#include <cstdint>
#include <optional>

#include "core/ops/quant.h"
#include "core/tensor.h"

namespace ompq {

// (clamp(floor(w / scale) + h + zero_point, qmin, qmax) - zero_point) * scale with
// h = rectified_sigmoid(alpha) (soft; differentiable in alpha) or [alpha >= 0] (hard; records
// nothing). scale/zero_point: 0-dim (axis = nullopt) or [w.size(axis)], w's dtype; zero_point
// may be undefined for 0.
Tensor adaround_quantize(const Tensor& w, const Tensor& alpha, const Tensor& scale,
                         const Tensor& zero_point, std::optional<int64_t> axis, QuantRange range,
                         bool hard = false);

// sum over alpha of 1 - |2 h(alpha) - 1|^beta (0-dim), differentiable in alpha; beta >= 1.
Tensor adaround_regularizer(const Tensor& alpha, double beta);

}  // namespace ompq
