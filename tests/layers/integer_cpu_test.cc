// The CPU int8 path of IntegerLayer (oneDNN through Int8Conv2d) against the integer reference ops
// it replaces (quantize, ops::int_conv2d / int_linear, ops::dequantize with the bias), layer by
// layer for both recipes' quantizers, NCHW and channels_last inputs, depthwise and linear; and a
// whole channels_last MobileNetV2 (depthwise, ReLU6, residual adds) against its fake-quantized
// self.
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
#include "layers/models/mobilenet_v2.h"
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

TEST(IntegerLayerCpu, WholeChannelsLastMobileNetV2EqualsTheReferencePath) {
  Generator gen(12);
  MobileNetV2Options options;
  options.num_classes = 10;
  options.small_input = true;
  options.width_mult = 0.5;
  auto model = std::make_shared<MobileNetV2>(options, gen);
  model->set_channels_last(true);
  model->eval();
  std::map<std::string, int> bits;
  int i = 0;
  for (const QuantizableLayer& layer : model->quantizable_layers()) bits[layer.name] = 4 + i++ % 5;
  quantize_model(*model, bits, {});
  {
    NoGradGuard no_grad;
    for (int b = 0; b < 3; ++b) model->forward(randn({8, 3, 32, 32}, gen));
  }
  set_quantizers_frozen(*model, true);
  const PackedModel packed = pack_model(*model);
  auto integer_model = [&](IntegerKernels kernels) {
    Generator other(13);
    auto fresh = std::make_shared<MobileNetV2>(options, other);
    fresh->set_channels_last(true);
    fresh->eval();
    EXPECT_TRUE(load_integer_model(*fresh, packed, kernels).ok());
    return fresh;
  };
  const Tensor x = randn({16, 3, 32, 32}, gen);
  const Tensor fast = integer_model(IntegerKernels::kFastest)->forward(x);
  const Tensor reference = integer_model(IntegerKernels::kReference)->forward(x);
  // Each layer's outputs agree to a float rounding; where one lies on a code boundary of the next
  // quantizer it moves by one code, so the logits agree closely rather than bit for bit.
  EXPECT_LT(relative_max_diff(fast, reference), 2e-3);
  const std::vector<float> a = fast.to_vector<float>(), b = reference.to_vector<float>();
  for (int n = 0; n < 16; ++n) {
    const auto row = [&](const std::vector<float>& v) {
      return std::max_element(v.begin() + n * 10, v.begin() + (n + 1) * 10) - (v.begin() + n * 10);
    };
    EXPECT_EQ(row(a), row(b)) << "image " << n;
  }
}

}  // namespace
}  // namespace ompq::nn
