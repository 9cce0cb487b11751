#include "layers/export/qdq.h"

#include <cmath>
#include <vector>

#include "core/error.h"

namespace ompq::nn {
namespace {

constexpr int64_t kInt8Min = -128, kInt8Max = 127, kUint8Max = 255;

}  // namespace

ActivationQdq activation_qdq(const QuantSpec& spec, const std::string& layer) {
  check_spec(spec, "activation_qdq");
  OMPQ_CHECK(!spec.axis.has_value() && spec.scale.defined() && spec.scale.numel() == 1,
             "ONNX export: the input quantizer of layer \"", layer, "\" is ", spec.str(),
             " (expected a calibrated per-tensor quantizer)");
  ActivationQdq qdq;
  qdq.type = spec.is_signed ? QdqType::kInt8 : QdqType::kUint8;
  qdq.scale = spec.scale.item<float>();
  const double zero_point = spec.symmetric ? 0.0 : spec.zero_point.item_double();
  const int64_t type_min = spec.is_signed ? kInt8Min : 0;
  const int64_t type_max = spec.is_signed ? kInt8Max : kUint8Max;
  OMPQ_CHECK(zero_point >= type_min && zero_point <= type_max,
             "ONNX export: the input quantizer of ", "layer \"", layer, "\" has zero point ",
             zero_point, ", outside ", spec.is_signed ? "int8" : "uint8", "'s range [", type_min,
             ", ", type_max, "]");
  qdq.zero_point = static_cast<int32_t>(zero_point);
  if (spec.qmin() != type_min || spec.qmax() != type_max) {
    // In double, then rounded once to the f32 the Clip node holds.
    const double scale = qdq.scale;
    qdq.clip = ClipRange{static_cast<float>((spec.qmin() - zero_point) * scale),
                         static_cast<float>((spec.qmax() - zero_point) * scale)};
  }
  return qdq;
}

WeightQdq weight_qdq(const PackedLayer& layer) {
  const QuantSpec& spec = layer.weight;
  const int64_t shift = spec.is_signed ? 0 : int64_t{1} << (spec.bits - 1);
  std::vector<int32_t> codes = layer.weight_codes().to_vector<int32_t>();
  std::vector<int8_t> shifted(codes.size());
  for (size_t i = 0; i < codes.size(); ++i) shifted[i] = static_cast<int8_t>(codes[i] - shift);
  const std::vector<double> zero_points = spec.symmetric
                                              ? std::vector<double>(spec.scale.numel(), 0.0)
                                              : spec.zero_point.to_vector<double>();
  std::vector<int8_t> shifted_zero_points(zero_points.size());
  for (size_t c = 0; c < zero_points.size(); ++c) {
    const double z = zero_points[c] - static_cast<double>(shift);
    OMPQ_CHECK(z >= kInt8Min && z <= kInt8Max, "ONNX export: layer \"", layer.name,
               "\": weight zero point ", zero_points[c], " of channel ", c, " (", spec.str(),
               ") does not fit int8 after the shift by ", -shift);
    shifted_zero_points[c] = static_cast<int8_t>(z);
  }
  WeightQdq qdq;
  qdq.codes = Tensor::from_vector(shifted, layer.weight_shape);
  qdq.scale = spec.scale.to(Device::cpu()).to(DType::kF32).contiguous();
  qdq.zero_point = Tensor::from_vector(shifted_zero_points, qdq.scale.shape());
  qdq.axis = spec.axis;
  return qdq;
}

}  // namespace ompq::nn
