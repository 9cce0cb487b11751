// The CPU int8 path of IntegerLayer (oneDNN through Int8Conv2d) against the integer reference ops
// it replaces (quantize, ops::int_conv2d / int_linear, ops::dequantize with the bias), layer by
// layer for both recipes' quantizers, NCHW and channels_last inputs, depthwise and linear; a conv
// writing the next layer's input codes against quantizing its real output; and whole
// channels_last MobileNetV2 (depthwise, ReLU6, residual adds) and ResNet-20 models, whose convs
// write the next layer's codes where the graph allows, against the reference path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops/conv.h"
#include "core/ops/elementwise.h"
#include "core/ops/integer.h"
#include "core/ops/memory_format.h"
#include "core/ops/quant.h"
#include "core/random.h"
#include "layers/conv.h"
#include "layers/models/mobilenet_v2.h"
#include "layers/models/resnet.h"
#include "layers/quant/integer_layer.h"
#include "layers/quant/packed_model.h"
#include "layers/quant/quantize_model.h"

namespace ompq::nn {
namespace {

// The largest |a - b| relative to the largest |b|.
double relative_max_diff(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.contiguous().to_vector<float>();
  const std::vector<float> y = b.contiguous().to_vector<float>();
  EXPECT_EQ(x.size(), y.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(x[i] - y[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(y[i])));
  }
  return diff / scale;
}

// A packed layer with random codes and the given recipe's quantizer kinds.
PackedLayer random_layer(QuantizableLayer::Kind kind, const Shape& weight_shape,
                         const Conv2dParams& params, QuantScheme scheme, int bits, Generator& gen) {
  PackedLayer layer;
  layer.name = "layer";
  layer.kind = kind;
  layer.weight_shape = weight_shape;
  layer.params = params;
  const int64_t out = weight_shape[0];
  layer.weight = scheme == QuantScheme::kQat ? qat_weight_spec(bits) : ptq_weight_spec(bits);
  layer.weight.axis = 0;
  layer.weight.scale = ops::add(ops::mul(rand({out}, gen), 0.02), 0.005);
  if (!layer.weight.symmetric) {
    std::vector<float> zero_points =
        ops::mul(rand({out}, gen), double(1 << bits)).to_vector<float>();
    for (float& z : zero_points) z = std::min(std::floor(z), float((1 << bits) - 1));
    layer.weight.zero_point = Tensor::from_vector(zero_points, {out});
  }
  const Tensor codes = quantize(ops::mul(randn(weight_shape, gen), 0.1), layer.weight);
  layer.packed_weight = ops::pack_weight_codes(codes, bits, layer.weight.qmin());
  layer.bias = randn({out}, gen);
  QuantSpec input = scheme == QuantScheme::kQat ? qat_activation_spec(8) : ptq_activation_spec(8);
  input.scale = Tensor::scalar(0.03);
  if (!input.symmetric) input.zero_point = Tensor::scalar(37);
  layer.input = input;
  return layer;
}

// The integer reference of one layer on real input x.
Tensor reference(const PackedLayer& layer, const Tensor& x) {
  const int64_t out = layer.weight_shape[0];
  const Tensor codes = layer.weight_codes();
  const Tensor zero_points =
      layer.weight.symmetric ? Tensor()
                             : layer.weight.zero_point.expand({out}).contiguous().to(DType::kI32);
  const Tensor multiplier =
      ops::mul(layer.weight.scale, static_cast<double>(layer.input->scale.item<float>()));
  const int64_t x_zp = layer.input->zero_point.defined()
                           ? static_cast<int64_t>(layer.input->zero_point.item<float>())
                           : 0;
  const Tensor x_codes = quantize(x, *layer.input);
  const Tensor acc = layer.kind == QuantizableLayer::Kind::kConv2d
                         ? ops::int_conv2d(x_codes, x_zp, codes, zero_points, layer.params)
                         : ops::int_linear(x_codes, x_zp, codes.view({out, -1}), zero_points);
  return ops::dequantize(acc, multiplier, Tensor(), 1, layer.bias);
}

TEST(IntegerLayerCpu, EqualsTheIntegerReferenceOpsLayerByLayer) {
  Generator gen(11);
  Conv2dParams strided;
  strided.stride = {2, 2};
  strided.padding = {1, 1};
  Conv2dParams depthwise = strided;
  depthwise.groups = 24;
  struct Conv {
    Shape weight, input;
    Conv2dParams params;
  };
  const std::vector<Conv> convs = {{{32, 16, 3, 3}, {2, 16, 9, 9}, strided},
                                   {{24, 24, 3, 3}, {2, 24, 8, 8}, Conv2dParams{}},
                                   {{24, 1, 3, 3}, {2, 24, 8, 8}, depthwise}};
  for (QuantScheme scheme : {QuantScheme::kQat, QuantScheme::kPtq}) {
    for (int bits : {4, 8}) {
      for (const Conv& c : convs) {
        const PackedLayer layer =
            random_layer(QuantizableLayer::Kind::kConv2d, c.weight, c.params, scheme, bits, gen);
        IntegerLayer integer(layer);
        // Inputs across the quantizer's range and past it, in both layouts.
        const Tensor x = ops::mul(randn(c.input, gen), 3.0);
        const Tensor want = reference(layer, x);
        for (bool channels_last : {false, true}) {
          const Tensor got = integer.forward(in_memory_format(x, channels_last));
          EXPECT_LT(relative_max_diff(got, want), 1e-6)
              << shape_str(c.weight) << " bits " << bits << " channels_last " << channels_last;
        }
      }
      const PackedLayer fc =
          random_layer(QuantizableLayer::Kind::kLinear, {10, 40}, {}, scheme, bits, gen);
      const Tensor x = ops::mul(randn({5, 40}, gen), 3.0);
      const Tensor got = IntegerLayer(fc).forward(x);
      EXPECT_EQ(got.shape(), (Shape{5, 10}));
      EXPECT_LT(relative_max_diff(got, reference(fc, x)), 1e-6) << "linear bits " << bits;
    }
  }
}

TEST(IntegerLayerCpu, WritesTheNextLayersCodesWithinOneStepOfQuantizingItsOutput) {
  Generator gen(14);
  Conv2dParams same;
  same.padding = {1, 1};
  for (QuantScheme scheme : {QuantScheme::kQat, QuantScheme::kPtq}) {
    for (NormActivation activation :
         {NormActivation::kIdentity, NormActivation::kRelu, NormActivation::kRelu6}) {
      const PackedLayer layer =
          random_layer(QuantizableLayer::Kind::kConv2d, {24, 16, 3, 3}, same, scheme, 6, gen);
      QuantSpec next = *layer.input;
      // 6 / 0.1 = 60 codes: ReLU6's bound lies inside the code range.
      next.scale = Tensor::scalar(0.1);
      if (!next.symmetric) next.zero_point = Tensor::scalar(11);
      IntegerLayer integer(layer);
      ASSERT_TRUE(integer.can_write_codes());
      integer.write_next_input_codes(next, activation);
      EXPECT_TRUE(integer.writes_codes());
      const Tensor x = in_memory_format(ops::mul(randn({2, 16, 9, 9}, gen), 3.0), true);
      Tensor real = reference(layer, x);
      if (activation == NormActivation::kRelu) real = ops::relu(real);
      if (activation == NormActivation::kRelu6) real = ops::relu6(real);
      const std::vector<float> want = quantize(real, next).to(DType::kF32).to_vector<float>();
      const std::vector<float> got =
          integer.forward(x).contiguous().to(DType::kF32).to_vector<float>();
      ASSERT_EQ(got.size(), want.size());
      size_t off_by_one = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_LE(std::fabs(got[i] - want[i]), 1.0f) << "element " << i;
        off_by_one += got[i] != want[i];
      }
      // Only outputs within a float rounding of a code boundary may move.
      EXPECT_LT(off_by_one, got.size() / 100) << static_cast<int>(activation);
    }
  }
}

// A residual block's second conv adding the block input's codes (quantized by the first conv's
// input quantizer: s8 symmetric for QAT, u8 affine for PTQ), ReLU after the add, writing the next
// quantizer's codes or real values, against the reference: its real output plus the shortcut's
// dequantized codes, through ReLU, quantized.
TEST(IntegerLayerCpu, AddsTheShortcutsCodesWithinOneStepOfTheReference) {
  Generator gen(15);
  Conv2dParams same;
  same.padding = {1, 1};
  for (QuantScheme scheme : {QuantScheme::kQat, QuantScheme::kPtq}) {
    for (int bits : {4, 8}) {
      for (bool write_codes : {true, false}) {
        // Odd sizes; the source's input (the shortcut) has the adder's output shape.
        const Shape block_input = {2, 20, 7, 5};
        const PackedLayer source_layer =
            random_layer(QuantizableLayer::Kind::kConv2d, {12, 20, 3, 3}, same, scheme, bits, gen);
        const PackedLayer adder_layer =
            random_layer(QuantizableLayer::Kind::kConv2d, {20, 12, 3, 3}, same, scheme, bits, gen);
        IntegerLayer source(source_layer), adder(adder_layer);
        QuantSpec next = *adder_layer.input;
        next.scale = Tensor::scalar(0.05);
        if (!next.symmetric) next.zero_point = Tensor::scalar(3);
        if (write_codes) adder.write_next_input_codes(next, NormActivation::kRelu);
        adder.add_shortcut_of(source);
        EXPECT_TRUE(adder.adds_shortcut());
        EXPECT_THAT(
            [&] {
              adder.forward(randn({2, 12, 7, 5}, gen));
            },
            ::testing::ThrowsMessage<Error>(::testing::HasSubstr("has not run")));
        const Tensor x = in_memory_format(ops::mul(randn(block_input, gen), 3.0), true);
        const Tensor branch = in_memory_format(ops::mul(randn({2, 12, 7, 5}, gen), 3.0), true);
        source.forward(x);
        const Tensor got = adder.forward(branch);
        const Tensor shortcut = dequantize(quantize(x, *source_layer.input), *source_layer.input);
        const Tensor real = ops::add(reference(adder_layer, branch), shortcut);
        const std::string where = std::string(scheme == QuantScheme::kQat ? "qat" : "ptq") + " W" +
                                  std::to_string(bits) + (write_codes ? " codes" : " real");
        if (!write_codes) {
          // Real outputs: the batch norm after the conv applies the ReLU.
          EXPECT_LT(relative_max_diff(got, real), 1e-6) << where;
          continue;
        }
        const std::vector<float> want =
            quantize(ops::relu(real), next).to(DType::kF32).to_vector<float>();
        const std::vector<float> codes = got.contiguous().to(DType::kF32).to_vector<float>();
        ASSERT_EQ(codes.size(), want.size()) << where;
        size_t off_by_one = 0;
        for (size_t i = 0; i < codes.size(); ++i) {
          ASSERT_LE(std::fabs(codes[i] - want[i]), 1.0f) << where << " element " << i;
          off_by_one += codes[i] != want[i];
        }
        // One step only where the sum lies within a float rounding of a code boundary.
        EXPECT_LT(off_by_one, codes.size() / 100) << where;
      }
    }
  }
}

// Quantizes `model` with 4..8 bits, calibrates and packs it, and compares the CPU path (convs
// writing the next layer's codes and adding shortcuts where the graph allows) with the integer
// reference path on `images` random images: close logits and the same top-1.
template <typename MakeModel>
void expect_whole_model_equals_reference(const MakeModel& make_model, int expected_code_writers,
                                         int expected_shortcut_adders, double logits_tolerance,
                                         int64_t images = 16) {
  Generator gen(12);
  std::shared_ptr<Model> model = make_model(gen);
  std::map<std::string, int> bits;
  int i = 0;
  for (const QuantizableLayer& layer : model->quantizable_layers()) bits[layer.name] = 4 + i++ % 5;
  quantize_model(*model, bits, {});
  Shape batch = model->input_shape();
  batch.insert(batch.begin(), 8);
  {
    NoGradGuard no_grad;
    for (int b = 0; b < 3; ++b) model->forward(randn(batch, gen));
  }
  set_quantizers_frozen(*model, true);
  const PackedModel packed = pack_model(*model);
  auto integer_model = [&](IntegerKernels kernels) {
    Generator other(13);
    std::shared_ptr<Model> fresh = make_model(other);
    EXPECT_TRUE(load_integer_model(*fresh, packed, kernels).ok());
    return fresh;
  };
  const std::shared_ptr<Model> fast_model = integer_model(IntegerKernels::kFastest);
  int code_writers = 0, shortcut_adders = 0;
  for (const auto& [name, module] : fast_model->named_modules()) {
    if (auto conv = std::dynamic_pointer_cast<Conv2d>(module)) {
      auto integer = std::dynamic_pointer_cast<IntegerLayer>(conv->replacement());
      code_writers += integer->writes_codes();
      shortcut_adders += integer->adds_shortcut();
    }
  }
  EXPECT_EQ(code_writers, expected_code_writers);
  EXPECT_EQ(shortcut_adders, expected_shortcut_adders);
  batch[0] = images;
  const Tensor x = randn(batch, gen);
  const Tensor fast = fast_model->forward(x);
  const Tensor reference = integer_model(IntegerKernels::kReference)->forward(x);
  // Each layer's codes agree but for one step where a value lies within a float rounding of a code
  // boundary of the next quantizer (requantizing by multiplier / next scale rounds differently
  // from dividing the real output by it), and a shortcut added in the integer domain enters as
  // its codes (at most half a step of its quantizer from the real value the reference adds);
  // both propagate through every later layer, so the logits agree closely rather than bit for
  // bit, the more so the more layers are chained. Measured (largest logit difference / largest
  // logit): 1.2% ResNet-20, 1.9% ResNet-18, 8.2% MobileNetV2 (0.5 width, 51 chained layers),
  // where ResNet-20 and MobileNetV2 stayed within 1% and 6% with every shortcut added in f32.
  EXPECT_LT(relative_max_diff(fast, reference), logits_tolerance);
  const int64_t classes = fast.size(1);
  const std::vector<float> a = fast.to_vector<float>(), b = reference.to_vector<float>();
  for (int n = 0; n < images; ++n) {
    const auto row = [&](const std::vector<float>& v) {
      return std::max_element(v.begin() + n * classes, v.begin() + (n + 1) * classes) -
             (v.begin() + n * classes);
    };
    EXPECT_EQ(row(a), row(b)) << "image " << n;
  }
}

TEST(IntegerLayerCpu, WholeChannelsLastMobileNetV2EqualsTheReferencePath) {
  MobileNetV2Options options;
  options.num_classes = 10;
  options.small_input = true;
  options.width_mult = 0.5;
  // Per block: the expansion conv (absent in the first block) and the depthwise conv write codes
  // (ReLU6), and so does the projection (the next block's input, read by its expansion conv and
  // by its shortcut, which its projection adds); the projections of the 10 blocks with a
  // residual add it, taking the block input's codes from the expansion conv.
  expect_whole_model_equals_reference(
      [&](Generator& gen) {
        auto model = std::make_shared<MobileNetV2>(options, gen);
        model->set_channels_last(true);
        model->eval();
        return model;
      },
      51, 10, 1e-1);
}

TEST(IntegerLayerCpu, WholeChannelsLastResNet20EqualsTheReferencePath) {
  // The 7 identity-shortcut blocks' second convs add the shortcut (the block input's codes, which
  // their first conv quantizes). Codes writers: the stem (read by layer1.0's conv1 and its
  // shortcut), the 9 first convs, and the block outputs that only first convs, downsample convs
  // of the same input quantization and shortcuts added in producers read: all but the two
  // downsampling blocks' (their shortcut is the downsample conv's real output, added in f32) and
  // the last block's (average pooling reads it).
  expect_whole_model_equals_reference(
      [](Generator& gen) {
        auto model = resnet20(10, gen);
        model->set_channels_last(true);
        model->eval();
        return model;
      },
      16, 7, 2e-2);
}

TEST(IntegerLayerCpu, WholeChannelsLastSmallInputResNet18EqualsTheReferencePath) {
  // 8 basic blocks, 5 with an identity shortcut; codes writers: the stem, the 8 first convs and
  // the block outputs as for ResNet-20 (all but the 3 downsampling blocks' and the last one's).
  expect_whole_model_equals_reference(
      [](Generator& gen) {
        auto model = resnet18(10, /*small_input=*/true, gen);
        model->set_channels_last(true);
        model->eval();
        return model;
      },
      13, 5, 3e-2, 4);
}

}  // namespace
}  // namespace ompq::nn
