// The QDQ mapping of ompq's quantizers (layers/export/qdq.h): ONNX's QuantizeLinear /
// DequantizeLinear arithmetic, emulated here as the opset-13 specification states it (optional
// Clip, then saturate(round_half_even(x / scale) + zero_point) to the 8-bit type, then
// (q - zero_point) * scale), reproduces fake quantization exactly for every activation recipe and
// width (an 8-bit range that excludes 0 differs in its last steps only, as stated); weight codes
// stay within their bit-width and dequantize to the packed layer's weights.
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

std::vector<float> test_values(float scale, Generator& gen) {
  // Values far beyond both ends of every range, and many on the grid's half points.
  std::vector<float> values = ops::mul(randn({4000}, gen), 6.0).to_vector<float>();
  for (int k = -300; k <= 300; ++k) values.push_back((k + 0.5f) * scale);  // ties round to even
  return values;
}

std::vector<float> fake_quantized(const std::vector<float>& values, const QuantSpec& spec) {
  return fake_quantize(Tensor::from_vector(values, {static_cast<int64_t>(values.size())}), spec)
      .to_vector<float>();
}

TEST(ActivationQdq, ReproducesFakeQuantizationForEveryRecipeAndWidth) {
  Generator gen(3);
  for (int bits = 2; bits <= 8; ++bits) {
    const float levels = static_cast<float>((1 << bits) - 1);
    struct Case {
      QuantSpec spec;
      const char* recipe;
    };
    std::vector<Case> cases = {
        {with_params(qat_activation_spec(bits), 0.037f, 0), "qat"},
        {with_params(ptq_activation_spec(bits), 0.021f, 1), "ptq, zero point 1"},
        {with_params(ptq_activation_spec(bits), 0.013f, levels - 1), "ptq, zero point qmax - 1"}};
    if (bits < 8) {  // ranges that exclude 0: zero points outside the codes, shifted into uint8
      cases.push_back({with_params(ptq_activation_spec(bits), 0.017f, -5), "ptq, zero point -5"});
      cases.push_back(
          {with_params(ptq_activation_spec(bits), 0.019f, levels + 9), "ptq, zero point qmax + 9"});
    }
    for (const Case& c : cases) {
      const std::vector<float> values = test_values(c.spec.scale.item<float>(), gen);
      const ActivationQdq qdq = activation_qdq(c.spec, "layer");
      EXPECT_EQ(qdq.type, c.spec.is_signed ? QdqType::kInt8 : QdqType::kUint8);
      EXPECT_EQ(qdq.clip.has_value(), bits < 8) << c.recipe << " " << bits;
      EXPECT_EQ(qdq.saturated_levels, 0) << c.recipe << " " << bits;
      EXPECT_EQ(onnx_quantize_dequantize(values, qdq), fake_quantized(values, c.spec))
          << c.recipe << ", " << bits << " bits";
    }
  }
}

// The exporter's pairs around a conv's ReLU (layers/export/onnx_export.cc): the next layer's
// signed symmetric 8-bit pair on the conv's output, the ReLU, then the same scale as uint8 with
// zero point 0 give the fake-quantized ReLU exactly, every value beyond the range included.
TEST(ActivationQdq, PairsBeforeAndAfterAReluReproduceTheQuantizedRelu) {
  Generator gen(5);
  const QuantSpec spec = with_params(qat_activation_spec(8), 0.029f, 0);
  const ActivationQdq before_relu = activation_qdq(spec, "layer");
  ASSERT_EQ(before_relu.type, QdqType::kInt8);
  ASSERT_FALSE(before_relu.clip.has_value());
  ActivationQdq after_relu = before_relu;
  after_relu.type = QdqType::kUint8;
  const std::vector<float> values = test_values(before_relu.scale, gen);
  std::vector<float> relu_of_values = values;
  for (float& v : relu_of_values) v = std::max(v, 0.0f);
  std::vector<float> exported = onnx_quantize_dequantize(values, before_relu);
  for (float& v : exported) v = std::max(v, 0.0f);
  EXPECT_EQ(onnx_quantize_dequantize(exported, after_relu), fake_quantized(relu_of_values, spec));
  // Without the pair before the ReLU the uint8 pair alone would clamp at 255 steps, not 127.
  EXPECT_NE(onnx_quantize_dequantize(relu_of_values, after_relu),
            fake_quantized(relu_of_values, spec));
}

// A ReLU's output through a signed symmetric quantizer becomes a Clip and a uint8 pair with zero
// point 0 whose codes stay in [0, qmax] (127 at 8 bits) (what ONNX Runtime's x86 integer kernels
// take without the 128 shift that overflows their 16-bit sums): the same values for every width,
// beyond the range too; a PTQ (affine, unsigned) pair is left as it is.
TEST(ActivationQdq, AReluOutputsSignedPairBecomesAClippedUint8PairWithTheSameValues) {
  Generator gen(9);
  for (int bits = 2; bits <= 8; ++bits) {
    QuantSpec signed_symmetric;  // QAT's 8-bit activations; any width for other recipes
    signed_symmetric.bits = bits;
    const QuantSpec spec = with_params(signed_symmetric, 0.031f, 0);
    const ActivationQdq qdq = unsigned_for_non_negative(activation_qdq(spec, "layer"));
    ASSERT_EQ(qdq.type, QdqType::kUint8) << bits;
    EXPECT_EQ(qdq.zero_point, 0);
    ASSERT_TRUE(qdq.clip.has_value());
    EXPECT_EQ(qdq.clip->lo, 0.0f);
    EXPECT_EQ(std::nearbyint(qdq.clip->hi / qdq.scale), (1 << (bits - 1)) - 1) << bits;
    std::vector<float> relu_of_values = test_values(qdq.scale, gen);
    for (float& v : relu_of_values) v = std::max(v, 0.0f);
    EXPECT_EQ(onnx_quantize_dequantize(relu_of_values, qdq), fake_quantized(relu_of_values, spec))
        << bits << " bits";
  }
  const ActivationQdq affine =
      activation_qdq(with_params(ptq_activation_spec(8), 0.021f, 1), "layer");
  const ActivationQdq unchanged = unsigned_for_non_negative(affine);
  EXPECT_EQ(unchanged.type, affine.type);
  EXPECT_EQ(unchanged.zero_point, affine.zero_point);
  EXPECT_EQ(unchanged.clip.has_value(), affine.clip.has_value());
}

// An 8-bit affine range that excludes 0 has 256 codes and a zero point outside them: no uint8 pair
// holds it, so the zero point is clamped and only the values in the last |z| steps differ.
TEST(ActivationQdq, An8BitRangeExcludingZeroSaturatesOnlyItsLastSteps) {
  Generator gen(6);
  const QuantSpec spec = with_params(ptq_activation_spec(8), 0.02f, -3);
  const ActivationQdq qdq = activation_qdq(spec, "fc");
  EXPECT_EQ(qdq.zero_point, 0);
  EXPECT_EQ(qdq.saturated_levels, 3);
  ASSERT_TRUE(qdq.clip.has_value());  // the lower bound 3 * scale is the spec's, not 0
  const std::vector<float> values = test_values(0.02f, gen);
  const std::vector<float> expected = fake_quantized(values, spec);
  const std::vector<float> got = onnx_quantize_dequantize(values, qdq);
  int differing = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (got[i] == expected[i]) continue;
    ++differing;
    EXPECT_GT(expected[i], (255 - 3) * 0.02f) << values[i];  // only the top 3 steps
    EXPECT_LE(expected[i] - got[i], 3 * 0.02f + 1e-6f) << values[i];
  }
  EXPECT_GT(differing, 0);
}

// `n` random integers in [lo, lo + count).
std::vector<float> random_integers(int64_t n, int64_t lo, int64_t count, Generator& gen) {
  std::vector<float> values = rand({n}, gen).to_vector<float>();
  for (float& v : values) v = static_cast<float>(lo + std::min<int64_t>(count - 1, v * count));
  return values;
}

// A conv layer's packed weight with random codes (the lowest `codes_used` of the bit-width; 0:
// all), per-channel scales and (affine) zero points.
PackedLayer random_packed_layer(const QuantSpec& spec_template, Generator& gen,
                                int64_t codes_used = 0) {
  PackedLayer layer;
  layer.name = "features.3.conv.0";
  layer.weight_shape = {5, 3, 3, 3};
  layer.weight = spec_template;
  const int64_t levels = int64_t{1} << spec_template.bits;
  layer.weight.scale = ops::add(rand({5}, gen), 0.01);
  if (!spec_template.symmetric) {
    layer.weight.zero_point = Tensor::from_vector(random_integers(5, 0, levels, gen), {5});
  }
  const Tensor codes =
      Tensor::from_vector(random_integers(shape_numel(layer.weight_shape), spec_template.qmin(),
                                          codes_used > 0 ? codes_used : levels, gen),
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
      const std::vector<int32_t> zero_point = qdq.zero_point.to_vector<int32_t>();
      const int64_t per_channel = static_cast<int64_t>(codes.size()) / 5;
      // Each channel's codes span at most the bit-width's 2^bits values; up to 6 bits every
      // code minus its zero point is within +-64, so the zero points are 0.
      for (int64_t o = 0; o < 5; ++o) {
        const auto [lo, hi] = std::minmax_element(codes.begin() + o * per_channel,
                                                  codes.begin() + (o + 1) * per_channel);
        EXPECT_LT(*hi - *lo, 1 << bits) << spec.str();
        if (bits <= 6) EXPECT_EQ(zero_point[o], 0) << spec.str() << " channel " << o;
      }
      // DequantizeLinear: (code - zero_point[o]) * scale[o], in f32.
      const std::vector<float> scale = qdq.scale.to_vector<float>();
      std::vector<float> dequantized;
      for (size_t i = 0; i < codes.size(); ++i) {
        const size_t o = i / per_channel;
        dequantized.push_back(static_cast<float>(codes[i] - zero_point[o]) * scale[o]);
      }
      EXPECT_EQ(dequantized, layer.dequantized_weight().to_vector<float>()) << spec.str();
      EXPECT_EQ(qdq.saturated_channels, 0) << spec.str();
    }
  }
}

// Zero points 0 only for a whole layer: 7-bit affine codes within +-64 of their zero points are
// stored as code - zero point; one channel beyond takes every channel back to the shifted form.
TEST(WeightQdq, ZeroPointsAreZeroWhereEveryChannelFitsWithinSixtyFour) {
  Generator gen(6);
  PackedLayer layer = random_packed_layer(ptq_weight_spec(7), gen, 100);  // codes 0..99
  layer.weight.zero_point = Tensor::from_vector<float>({40, 50, 60, 35, 45}, {5});
  const std::vector<int32_t> codes = layer.weight_codes().to_vector<int32_t>();
  WeightQdq qdq = weight_qdq(layer);
  EXPECT_EQ(qdq.zero_point.to_vector<int32_t>(), std::vector<int32_t>(5, 0));
  const std::vector<int32_t> stored = qdq.codes.to_vector<int32_t>();
  const std::vector<int32_t> zero_points = {40, 50, 60, 35, 45};
  for (size_t i = 0; i < codes.size(); ++i) {
    ASSERT_EQ(stored[i], codes[i] - zero_points[i / 27]) << i;
  }
  layer.weight.zero_point = Tensor::from_vector<float>({40, 50, 60, 35, 10}, {5});  // 99 - 10 > 64
  qdq = weight_qdq(layer);
  const std::vector<int32_t> shifted_zero_points = qdq.zero_point.to_vector<int32_t>();
  EXPECT_NE(std::count(shifted_zero_points.begin(), shifted_zero_points.end(), 0), 5);
  const std::vector<float> scale = qdq.scale.to_vector<float>();
  const std::vector<int32_t> shifted = qdq.codes.to_vector<int32_t>();
  std::vector<float> dequantized;
  for (size_t i = 0; i < shifted.size(); ++i) {
    dequantized.push_back(static_cast<float>(shifted[i] - shifted_zero_points[i / 27]) *
                          scale[i / 27]);
  }
  EXPECT_EQ(dequantized, layer.dequantized_weight().to_vector<float>());
}

TEST(WeightQdq, AChannelOfOneSignKeepsItsExactWeightsThroughAnotherShift) {
  Generator gen(5);
  // 8 bits, codes 0..200; channel 2's zero point -3 (its weights are all positive, 3..203 steps):
  // the usual shift by -128 would put its zero point at -131, so it moves by -125 instead.
  PackedLayer layer = random_packed_layer(ptq_weight_spec(8), gen, 201);
  layer.weight.zero_point = Tensor::from_vector<float>({3, 128, -3, 0, 255}, {5});
  const WeightQdq qdq = weight_qdq(layer);
  const std::vector<float> scale = qdq.scale.to_vector<float>();
  const std::vector<int32_t> codes = qdq.codes.to_vector<int32_t>(),
                             zero_point = qdq.zero_point.to_vector<int32_t>();
  std::vector<float> dequantized;
  for (size_t i = 0; i < codes.size(); ++i) {
    dequantized.push_back(static_cast<float>(codes[i] - zero_point[i / 27]) * scale[i / 27]);
  }
  EXPECT_EQ(dequantized, layer.dequantized_weight().to_vector<float>());
  EXPECT_EQ(zero_point, (std::vector<int32_t>{3 - 128, 0, -128, -128, 127}));
}

TEST(WeightQdq, AChannelInt8CannotHoldSaturatesItsFarCodesOnly) {
  Generator gen(5);
  // 8 bits over all 256 codes and zero point -4: relative codes 4..259 are 256 values beyond 0.
  PackedLayer layer = random_packed_layer(ptq_weight_spec(8), gen);
  layer.weight.zero_point = Tensor::from_vector<float>({0, 0, -4, 0, 0}, {5});
  const WeightQdq qdq = weight_qdq(layer);
  const std::vector<int32_t> stored = qdq.codes.to_vector<int32_t>();
  const std::vector<int32_t> original = layer.weight_codes().to_vector<int32_t>();
  const int32_t top = *std::max_element(original.begin() + 2 * 27, original.begin() + 3 * 27);
  ASSERT_GT(top, 251);  // the random codes reach the top steps
  EXPECT_EQ(qdq.saturated_channels, 1);
  EXPECT_EQ(qdq.saturated_levels, top + 4 - 255);
  const std::vector<int32_t> zero_point = qdq.zero_point.to_vector<int32_t>();
  for (size_t i = 2 * 27; i < 3 * 27; ++i) {
    // Exact relative code (code - zero point) below the top, clamped to 127 - (-128) above.
    EXPECT_EQ(stored[i] - zero_point[2], std::min(original[i] + 4, 255)) << i;
  }
}

}  // namespace
}  // namespace ompq::nn
