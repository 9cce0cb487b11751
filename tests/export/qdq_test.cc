// The QDQ mapping of ompq's quantizers (layers/export/qdq.h): ONNX's QuantizeLinear /
// DequantizeLinear arithmetic, emulated here as the opset-13 specification states it (optional
// Clip, then saturate(round_half_even(x / scale) + zero_point) to the 8-bit type, then
// (q - zero_point) * scale), reproduces fake quantization exactly for every activation recipe and
// width; weight codes stay within their bit-width and dequantize to the packed layer's weights.
#include "layers/export/qdq.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/ops/elementwise.h"
#include "core/ops/integer.h"
#include "core/random.h"

namespace ompq::nn {
namespace {

using ::testing::HasSubstr;

// The spec's f32 scale and zero point set to the given values.
QuantSpec with_params(QuantSpec spec, float scale, float zero_point) {
  spec.scale = Tensor::scalar(scale);
  if (!spec.symmetric) spec.zero_point = Tensor::scalar(zero_point);
  return spec;
}

// What an ONNX runtime computes for the pair, in f32 as the operators are specified.
std::vector<float> onnx_quantize_dequantize(const std::vector<float>& x, const ActivationQdq& qdq) {
  const float type_min = qdq.type == QdqType::kInt8 ? -128.0f : 0.0f;
  const float type_max = qdq.type == QdqType::kInt8 ? 127.0f : 255.0f;
  const float zero_point = static_cast<float>(qdq.zero_point);
  std::vector<float> out;
  for (float v : x) {
    if (qdq.clip) v = std::min(std::max(v, qdq.clip->lo), qdq.clip->hi);
    const float q =
        std::min(std::max(std::nearbyint(v / qdq.scale) + zero_point, type_min), type_max);
    out.push_back((q - zero_point) * qdq.scale);
  }
  return out;
}

TEST(ActivationQdq, ReproducesFakeQuantizationForEveryRecipeAndWidth) {
  Generator gen(3);
  // Values far beyond both ends of every range, and many on the grid's half points.
  std::vector<float> x = ops::mul(randn({4000}, gen), 6.0).to_vector<float>();
  for (int bits = 2; bits <= 8; ++bits) {
    struct Case {
      QuantSpec spec;
      const char* recipe;
    };
    const Case cases[] = {
        {with_params(qat_activation_spec(bits), 0.037f, 0), "qat"},
        {with_params(ptq_activation_spec(bits), 0.021f, 1), "ptq zero point 1"},
        {with_params(ptq_activation_spec(bits), 0.013f, static_cast<float>((1 << bits) - 2)),
         "ptq zero point near qmax"}};
    for (const Case& c : cases) {
      const float s = c.spec.scale.item<float>();
      std::vector<float> values = x;
      for (int k = -300; k <= 300; ++k) values.push_back((k + 0.5f) * s);  // ties round to even
      const ActivationQdq qdq = activation_qdq(c.spec, "layer");
      EXPECT_EQ(qdq.type, c.spec.is_signed ? QdqType::kInt8 : QdqType::kUint8);
      EXPECT_EQ(qdq.clip.has_value(), bits < 8) << c.recipe << " " << bits;
      const std::vector<float> expected =
          fake_quantize(Tensor::from_vector(values, {static_cast<int64_t>(values.size())}), c.spec)
              .to_vector<float>();
      EXPECT_EQ(onnx_quantize_dequantize(values, qdq), expected)
          << c.recipe << ", " << bits << " bits";
    }
  }
}

TEST(ActivationQdq, RefusesAZeroPointTheTypeCannotHold) {
  QuantSpec spec = with_params(ptq_activation_spec(8), 0.1f, -3.0f);
  try {
    activation_qdq(spec, "layer2.0.conv1");
    FAIL() << "accepted zero point -3 for uint8";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("layer2.0.conv1"));
    EXPECT_THAT(e.what(), HasSubstr("zero point -3"));
  }
}

// `n` random integers in [lo, lo + count).
std::vector<float> random_integers(int64_t n, int64_t lo, int64_t count, Generator& gen) {
  std::vector<float> values = rand({n}, gen).to_vector<float>();
  for (float& v : values) v = static_cast<float>(lo + std::min<int64_t>(count - 1, v * count));
  return values;
}

// A conv layer's packed weight with random codes, per-channel scales and (affine) zero points.
PackedLayer random_packed_layer(const QuantSpec& spec_template, Generator& gen) {
  PackedLayer layer;
  layer.name = "features.3.conv.0";
  layer.weight_shape = {5, 3, 3, 3};
  layer.weight = spec_template;
  const int64_t levels = int64_t{1} << spec_template.bits;
  layer.weight.scale = ops::add(rand({5}, gen), 0.01);
  if (!spec_template.symmetric) {
    layer.weight.zero_point = Tensor::from_vector(random_integers(5, 0, levels, gen), {5});
  }
  const Tensor codes = Tensor::from_vector(
      random_integers(shape_numel(layer.weight_shape), spec_template.qmin(), levels, gen),
      layer.weight_shape);
  layer.packed_weight =
      ops::pack_weight_codes(codes.to(spec_template.is_signed ? DType::kI8 : DType::kU8),
                             spec_template.bits, spec_template.qmin());
  return layer;
}

TEST(WeightQdq, Int8CodesWithinTheBitWidthDequantizeToThePackedWeights) {
  Generator gen(4);
  for (int bits = 2; bits <= 8; ++bits) {
    for (const QuantSpec& spec : {qat_weight_spec(bits), ptq_weight_spec(bits)}) {
      const PackedLayer layer = random_packed_layer(spec, gen);
      const WeightQdq qdq = weight_qdq(layer);
      ASSERT_EQ(qdq.codes.dtype(), DType::kI8);
      EXPECT_EQ(qdq.codes.shape(), layer.weight_shape);
      EXPECT_EQ(qdq.axis, std::optional<int64_t>(0));
      const std::vector<int32_t> codes = qdq.codes.to_vector<int32_t>();
      const int32_t lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
      EXPECT_GE(*std::min_element(codes.begin(), codes.end()), lo) << spec.str();
      EXPECT_LE(*std::max_element(codes.begin(), codes.end()), hi) << spec.str();
      // DequantizeLinear: (code - zero_point[o]) * scale[o], in f32.
      const std::vector<float> scale = qdq.scale.to_vector<float>();
      const std::vector<int32_t> zero_point = qdq.zero_point.to_vector<int32_t>();
      const int64_t per_channel = static_cast<int64_t>(codes.size()) / 5;
      std::vector<float> dequantized;
      for (size_t i = 0; i < codes.size(); ++i) {
        const size_t o = i / per_channel;
        dequantized.push_back(static_cast<float>(codes[i] - zero_point[o]) * scale[o]);
      }
      EXPECT_EQ(dequantized, layer.dequantized_weight().to_vector<float>()) << spec.str();
    }
  }
}

TEST(WeightQdq, RefusesAZeroPointInt8CannotHoldAfterTheShift) {
  Generator gen(5);
  PackedLayer layer = random_packed_layer(ptq_weight_spec(8), gen);
  layer.weight.zero_point = Tensor::from_vector<float>({0, 0, 300, 0, 0}, {5});
  try {
    weight_qdq(layer);
    FAIL() << "accepted weight zero point 300";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("features.3.conv.0"));
    EXPECT_THAT(e.what(), HasSubstr("zero point 300 of channel 2"));
  }
}

}  // namespace
}  // namespace ompq::nn
