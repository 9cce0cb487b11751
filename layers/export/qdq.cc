#include "layers/export/qdq.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "core/error.h"

namespace ompq::nn {
namespace {

constexpr int64_t kInt8Min = -128, kInt8Max = 127, kUint8Max = 255;
// The largest |weight code| stored with zero point 0 (weight_qdq in qdq.h).
constexpr int64_t kZeroPointFreeWeight = 64;

}  // namespace

ActivationQdq activation_qdq(const QuantSpec& spec, const std::string& layer) {
  check_spec(spec, "activation_qdq");
  OMPQ_CHECK(!spec.axis.has_value() && spec.scale.defined() && spec.scale.numel() == 1,
             "ONNX export: the input quantizer of layer \"", layer, "\" is ", spec.str(),
             " (expected a calibrated per-tensor quantizer)");
  ActivationQdq qdq;
  qdq.type = spec.is_signed ? QdqType::kInt8 : QdqType::kUint8;
  qdq.scale = spec.scale.item<float>();
  const int64_t zero_point = spec.symmetric ? 0 : std::llround(spec.zero_point.item_double());
  const int64_t type_min = spec.is_signed ? kInt8Min : 0;
  const int64_t type_max = spec.is_signed ? kInt8Max : kUint8Max;
  // The shifts that keep the codes inside the type, and among them those that keep the zero point
  // inside too.
  const int64_t codes_lo = type_min - spec.qmin(), codes_hi = type_max - spec.qmax();
  const int64_t lo = std::max(codes_lo, type_min - zero_point);
  const int64_t hi = std::min(codes_hi, type_max - zero_point);
  const int64_t shift =
      lo <= hi ? std::clamp<int64_t>(0, lo, hi) : std::clamp<int64_t>(0, codes_lo, codes_hi);
  const int64_t shifted_zero_point = std::clamp(zero_point + shift, type_min, type_max);
  qdq.zero_point = static_cast<int32_t>(shifted_zero_point);
  qdq.saturated_levels = std::abs(zero_point + shift - shifted_zero_point);
  if (spec.qmin() + shift != type_min || spec.qmax() + shift != type_max ||
      qdq.saturated_levels > 0) {
    // In double, then rounded once to the f32 the Clip node holds.
    const double scale = qdq.scale;
    qdq.clip = ClipRange{static_cast<float>((spec.qmin() - zero_point) * scale),
                         static_cast<float>((spec.qmax() - zero_point) * scale)};
  }
  return qdq;
}

ActivationQdq unsigned_for_non_negative(const ActivationQdq& qdq) {
  if (qdq.type != QdqType::kInt8 || qdq.zero_point != 0 || qdq.saturated_levels > 0) return qdq;
  ActivationQdq unsigned_qdq = qdq;
  unsigned_qdq.type = QdqType::kUint8;
  // In double, then rounded once to the f32 the Clip node holds (rounds back to qmax exactly).
  const float hi = qdq.clip ? qdq.clip->hi : static_cast<float>(kInt8Max * double{qdq.scale});
  unsigned_qdq.clip = ClipRange{0.0f, hi};
  return unsigned_qdq;
}

WeightQdq weight_qdq(const PackedLayer& layer) {
  const QuantSpec& spec = layer.weight;
  const std::vector<int32_t> codes = layer.weight_codes().to_vector<int32_t>();
  const size_t channels = static_cast<size_t>(spec.scale.numel());
  const size_t per_channel = codes.size() / channels;
  const std::vector<double> zero_points =
      spec.symmetric ? std::vector<double>(channels, 0.0) : spec.zero_point.to_vector<double>();
  // The shift that centres the bit-width's codes on int8's: 0 for signed codes, -2^(bits-1) for
  // unsigned ones.
  const int64_t centring = -(spec.qmin() + (int64_t{1} << (spec.bits - 1)));
  // Each channel's lowest and highest code, and its zero point as an integer.
  std::vector<int64_t> lo_codes(channels), hi_codes(channels), zs(channels);
  bool zero_point_free = true;
  for (size_t c = 0; c < channels; ++c) {
    const auto begin = codes.begin() + c * per_channel, end = begin + per_channel;
    const auto [lo_code, hi_code] = std::minmax_element(begin, end);
    lo_codes[c] = *lo_code;
    hi_codes[c] = *hi_code;
    zs[c] = std::llround(zero_points[c]);
    zero_point_free = zero_point_free && lo_codes[c] - zs[c] >= -kZeroPointFreeWeight &&
                      hi_codes[c] - zs[c] <= kZeroPointFreeWeight;
  }
  WeightQdq qdq;
  std::vector<int8_t> shifted(codes.size()), shifted_zero_points(channels);
  for (size_t c = 0; c < channels; ++c) {
    const auto begin = codes.begin() + c * per_channel, end = begin + per_channel;
    const int64_t lo_code = lo_codes[c], hi_code = hi_codes[c], z = zs[c];
    const int64_t lo = std::max(kInt8Min - lo_code, kInt8Min - z);
    const int64_t hi = std::min(kInt8Max - hi_code, kInt8Max - z);
    // No shift fits both (8 bits only): the zero point fits, so the weights stay exact but for the
    // codes at the far end, which saturate.
    const int64_t shift = zero_point_free ? -z
                          : lo <= hi      ? std::clamp(centring, lo, hi)
                                          : std::clamp(centring, kInt8Min - z, kInt8Max - z);
    int64_t saturated = 0;
    for (auto it = begin; it != end; ++it) {
      const int64_t code = *it + shift;
      const int64_t stored = std::clamp(code, kInt8Min, kInt8Max);
      saturated = std::max(saturated, std::abs(code - stored));
      shifted[it - codes.begin()] = static_cast<int8_t>(stored);
    }
    if (saturated > 0) {
      ++qdq.saturated_channels;
      qdq.saturated_levels = std::max(qdq.saturated_levels, saturated);
    }
    shifted_zero_points[c] = static_cast<int8_t>(z + shift);
  }
  qdq.codes = Tensor::from_vector(shifted, layer.weight_shape);
  qdq.scale = spec.scale.to(Device::cpu()).to(DType::kF32).contiguous();
  qdq.zero_point = Tensor::from_vector(shifted_zero_points, qdq.scale.shape());
  qdq.axis = spec.axis;
  return qdq;
}

}  // namespace ompq::nn
