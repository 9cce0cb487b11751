// How ompq's quantizers become ONNX QuantizeLinear / DequantizeLinear parameters (opset 13).
//
// ONNX quantizes x as saturate(round(x / scale) + zero_point) (round half to even) over the whole
// range of its 8-bit type and dequantizes q as (q - zero_point) * scale: ompq's QuantSpec formula
// (quant_spec.h) with [qmin, qmax] widened to the type's range. So:
//   activations: a signed spec becomes int8, an unsigned one uint8, with the spec's own scale.
//     The codes may be shifted by an integer t (zero point z + t, codes [qmin + t, qmax + t])
//     without changing any real value; t is the one closest to 0 that puts both the zero point
//     and the codes inside the type (BRECQ's affine ranges that exclude 0 have zero points outside
//     [0, 2^bits - 1]; below 8 bits there is room to shift them in). Where the codes span less
//     than the type's range (any width below 8 bits), a Clip to the real values of qmin and qmax
//     goes before QuantizeLinear: x clipped to [(qmin - z) * s, (qmax - z) * s] rounds into
//     exactly [qmin, qmax], because rounding is monotonic and the bounds themselves round to qmin
//     and qmax. A scale or zero point chosen to make the type's saturation do the clamp cannot
//     work: it would clamp only one side, or change the grid. Only an 8-bit affine range that
//     excludes 0 has no exact form (256 codes and a zero point outside them do not fit 8 bits):
//     its zero point is clamped into the type, and the values in the `saturated_levels` steps
//     at the far end of its range saturate early (reported, never silent).
//   weights: integer codes in an int8 initializer with per-channel (axis 0) or per-tensor scales
//     and zero points for DequantizeLinear. Each channel's codes and zero point move by the same
//     integer, which leaves (q - z) and so every real weight unchanged: by -2^(bits-1) for
//     unsigned codes (BRECQ's affine weights), so that they lie in the bit-width's signed range,
//     or by less where a zero point outside the codes (a channel whose weights all have one sign)
//     needs it to fit int8. A channel whose codes and zero point span more than 256 values (only
//     possible at 8 bits: all weights of one sign with codes up to the range's far end) keeps
//     its zero point exact and saturates the codes beyond int8 (reported, never silent).
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
  // Steps at one end of the range that saturate early because the zero point had to be clamped
  // into the type (0: the pair reproduces the spec exactly).
  int64_t saturated_levels = 0;
};

// The pair reproducing a per-tensor spec with defined tensors. Throws an Error naming `layer` when
// the spec is not a calibrated per-tensor quantizer.
ActivationQdq activation_qdq(const QuantSpec& spec, const std::string& layer);

// The pair for a signed symmetric quantizer (`qdq`) of values known to be >= 0 (a ReLU's output):
// a uint8 pair with zero point 0 after a Clip to [0, qmax * scale], which gives the same codes
// [0, qmax] and real values. Runtimes that compute integer convolutions with unsigned 8-bit inputs
// (ONNX Runtime on x86) otherwise shift signed codes by 128 into [128, 255], where AVX2's 16-bit
// pair sums of u8 x s8 products overflow against 8-bit weights; codes up to 127 cannot. Any other
// pair (affine, unsigned, or with saturated levels) is returned unchanged.
ActivationQdq unsigned_for_non_negative(const ActivationQdq& qdq);

// A weight as DequantizeLinear's inputs.
struct WeightQdq {
  Tensor codes;                 // i8, the weight's shape, within the bit-width's range
  Tensor scale;                 // f32 [O] (per channel along axis) or [] (per tensor)
  Tensor zero_point;            // i8, the scale's shape
  std::optional<int64_t> axis;  // 0 for per-channel weights
  // Channels whose codes saturated (no int8 form), and the most steps a code lost (0: exact).
  int64_t saturated_channels = 0;
  int64_t saturated_levels = 0;
};

// The packed layer's weight as int8 codes with scales and zero points, dequantizing to the packed
// weight exactly. When every channel's codes minus its zero point lie within +-64, they are stored
// so, with zero points 0: ONNX Runtime's and OpenVINO's fast integer kernels take zero-point-free
// weights only (ORT 1.32 ran MobileNetV2's asymmetric PTQ weights 15x slower), and within +-64 a
// product with a uint8 input code summed in pairs fits AVX2's 16-bit sums (2 x 255 x 64 < 32768).
// Otherwise (8-bit affine weights) each channel's codes are shifted as a whole onto int8, centred
// where they fit, with the zero point shifted alike.
WeightQdq weight_qdq(const PackedLayer& layer);

}  // namespace ompq::nn
