// BRECQ's 'mse' initialization of a quantizer's range (docs/METHOD.md section 4.3): for i = 0..79
// the candidate range [min * (1 - 0.01 i), max * (1 - 0.01 i)] (min and max of x, per channel along
// spec.axis or over the whole tensor) is turned into a scale and zero point (params_from_range)
// and scored by mean(|x - fake_quantize(x)|^2.4); each channel keeps its strictly best candidate
// (the first of equal scores).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/tensor.h"
#include "layers/quant/quant_spec.h"

namespace ompq::nn {

// x: f32/f64, non-empty. Uses spec's bits, signedness, symmetry and axis, not its tensors.
RangeParams mse_range_params(const Tensor& x, const QuantSpec& spec);

// Per-channel (along `axis`) or whole-tensor minima and maxima of x, in double.
struct ChannelRange {
  std::vector<double> min, max;
};
ChannelRange channel_range(const Tensor& x, std::optional<int64_t> axis);

}  // namespace ompq::nn
