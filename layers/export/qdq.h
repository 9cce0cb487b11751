// How ompq's quantizers become ONNX QuantizeLinear / DequantizeLinear parameters (opset 13).
//
// ONNX quantizes x as saturate(round(x / scale) + zero_point) (round half to even) over the whole
// range of its 8-bit type and dequantizes q as (q - zero_point) * scale: ompq's QuantSpec formula
// (quant_spec.h) with [qmin, qmax] widened to the type's range. So:
//   activations: a signed spec becomes int8, an unsigned one uint8, with the spec's own scale and
//     zero point. Where the spec's code range is narrower than the type's (any width below 8 bits),
//     a Clip to the real values of qmin and qmax goes before QuantizeLinear: x clipped to
//     [(qmin - z) * s, (qmax - z) * s] rounds into exactly [qmin, qmax], because rounding is
//     monotonic and the bounds themselves round to qmin and qmax. A scale or zero point chosen to
//     make the type's saturation do the clamp cannot work: it would clamp only one side, or change
//     the grid.
//   weights: integer codes in an int8 initializer with per-channel (axis 0) or per-tensor scales
//     and zero points for DequantizeLinear. Signed codes are stored as they are; unsigned codes
//     (BRECQ's affine weights) are shifted by -2^(bits-1) together with their zero point, which
//     leaves (q - z) and so every real weight unchanged and the codes within bits-wide range.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/tensor.h"
#include "layers/quant/packed_model.h"
#include "layers/quant/quant_spec.h"

namespace ompq::nn {

enum class QdqType { kInt8, kUint8 };

// The real interval a Clip node bounds an activation to.
struct ClipRange {
  float lo = 0.0f, hi = 0.0f;
};

// One per-tensor QuantizeLinear / DequantizeLinear pair.
struct ActivationQdq {
  QdqType type = QdqType::kInt8;
  float scale = 1.0f;
  int32_t zero_point = 0;         // within the type's range
  std::optional<ClipRange> clip;  // set when the spec's codes span less than the type's range
};

// The pair reproducing a per-tensor spec with defined tensors. Throws an Error naming `layer` when
// the spec is per channel or its zero point lies outside the type's range.
ActivationQdq activation_qdq(const QuantSpec& spec, const std::string& layer);

// A weight as DequantizeLinear's inputs.
struct WeightQdq {
  Tensor codes;                 // i8, the weight's shape, within the bit-width's range
  Tensor scale;                 // f32 [O] (per channel along axis) or [] (per tensor)
  Tensor zero_point;            // i8, the scale's shape
  std::optional<int64_t> axis;  // 0 for per-channel weights
};

// The packed layer's weight as int8 codes with scales and zero points. Throws an Error naming the
// layer when a shifted zero point does not fit int8.
WeightQdq weight_qdq(const PackedLayer& layer);

}  // namespace ompq::nn
