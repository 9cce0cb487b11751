// AdaRound in the weight quantizer: the schedule (warm-up, beta annealing), soft/hard/nearest
// switching, and baking the learned rounding into a layer's weight so that a plain quantized model
// (and a state_dict round trip) reproduces it exactly.
#include "layers/quant/adaround.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/functional/reduce.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/random.h"
#include "layers/models/resnet.h"
#include "layers/quant/quantize_model.h"

namespace ompq::nn {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

TEST(AdaRoundSchedule, WarmupThenLinearBetaDecay) {
  AdaRoundSchedule s;
  s.iterations = 100;
  s.check();
  EXPECT_FALSE(s.regularized(1));
  EXPECT_FALSE(s.regularized(19));
  EXPECT_TRUE(s.regularized(20));
  EXPECT_TRUE(s.regularized(100));
  EXPECT_DOUBLE_EQ(s.beta(5), 20.0);
  EXPECT_DOUBLE_EQ(s.beta(20), 20.0);
  EXPECT_DOUBLE_EQ(s.beta(60), 11.0);  // halfway from 20 down to 2
  EXPECT_DOUBLE_EQ(s.beta(100), 2.0);
  // The reference's defaults: 20000 iterations, no rounding loss for the first 4000.
  AdaRoundSchedule reference;
  EXPECT_FALSE(reference.regularized(3999));
  EXPECT_TRUE(reference.regularized(4000));
  EXPECT_DOUBLE_EQ(reference.beta(12000), 11.0);
}

TEST(AdaRoundSchedule, BadSettings) {
  AdaRoundSchedule s;
  s.iterations = 0;
  EXPECT_THAT([&] { s.check(); },
              ThrowsMessage<Error>(HasSubstr("AdaRoundSchedule: 0 iterations (expected >= 1)")));
  s.iterations = 10;
  s.warmup = 1.0;
  EXPECT_THAT([&] { s.check(); }, ThrowsMessage<Error>(HasSubstr("warmup 1 (expected a fraction")));
  s.warmup = 0.2;
  s.beta_start = 2;
  s.beta_end = 20;
  EXPECT_THAT(
      [&] { s.check(); },
      ThrowsMessage<Error>(HasSubstr("beta from 2 to 20 (expected beta_start >= beta_end")));
}

TEST(WeightQuantizerAdaRound, SoftStartsAtTheWeightHardStartsAtNearest) {
  Generator gen(1);
  const Tensor w = randn({6, 10}, gen);
  WeightQuantizer q(ptq_weight_spec(4), WeightRange::kMse, 6);
  const std::vector<float> nearest = q.forward(w).to_vector<float>();
  q.start_adaptive_rounding(w);
  ASSERT_TRUE(q.adaptive_rounding());
  EXPECT_TRUE(q.rounding_variables().requires_grad());
  // Soft at the init: each weight inside the grid comes back (up to f32 rounding).
  const std::vector<float> wv = w.to_vector<float>(), soft = q.forward(w).to_vector<float>();
  const std::vector<float> s = q.spec().scale.to_vector<float>();
  const std::vector<float> z = q.spec().zero_point.to_vector<float>();
  int inside = 0;
  for (size_t i = 0; i < wv.size(); ++i) {
    const float down = std::floor(wv[i] / s[i / 10]) + z[i / 10];
    if (down >= 0 && down + 1 <= 15) {  // both neighbouring grid points in range
      EXPECT_NEAR(soft[i], wv[i], 1e-5) << i;
      ++inside;
    }
  }
  EXPECT_GT(inside, 40);
  q.set_rounding_hard(true);
  EXPECT_EQ(q.forward(w).to_vector<float>(), nearest);
  // Soft rounding passes a gradient to alpha and none to the weight (floor has none).
  Tensor wg = w.clone().set_requires_grad(true);
  q.set_rounding_hard(false);
  sum(q.forward(wg)).backward();
  EXPECT_FALSE(wg.grad().defined());
  ASSERT_TRUE(q.rounding_variables().grad().defined());
  EXPECT_GT(ops::sum(ops::abs(q.rounding_variables().grad()), {}, false).item<float>(), 0.0f);
  q.rounding_variables().zero_grad();
  q.rounding_regularizer(20.0).backward();
  EXPECT_TRUE(q.rounding_variables().grad().defined());
  q.stop_adaptive_rounding();
  EXPECT_FALSE(q.adaptive_rounding());
  EXPECT_EQ(q.forward(w).to_vector<float>(), nearest);
}

TEST(WeightQuantizerAdaRound, BadUse) {
  WeightQuantizer minmax(qat_weight_spec(4), WeightRange::kMinMax, 2);
  EXPECT_THAT(
      [&] {
        minmax.start_adaptive_rounding(Tensor::ones({2, 3}));
      },
      ThrowsMessage<Error>(HasSubstr("adaptive rounding needs a fixed (MSE-searched) range")));
  WeightQuantizer q(ptq_weight_spec(4), WeightRange::kMse, 2);
  EXPECT_THAT([&] { q.set_rounding_hard(true); },
              ThrowsMessage<Error>(HasSubstr("set_rounding_hard without adaptive rounding")));
  q.start_adaptive_rounding(Tensor::ones({2, 3}));
  EXPECT_THAT(
      [&] {
        q.forward(Tensor::ones({2, 4}));
      },
      ThrowsMessage<Error>(HasSubstr(
          "weight of shape [2, 4] for adaptive rounding started on a weight of shape [2, 3]")));
}

// A resnet20 quantized for PTQ with random BN statistics, so that every conv's BN fold matters.
std::shared_ptr<ResNet> ptq_resnet20(uint64_t seed, QuantizedLayers* layers) {
  Generator gen(seed);
  auto model = resnet20(10, gen);
  for (const auto& [name, module] : model->named_modules()) {
    if (auto bn = std::dynamic_pointer_cast<BatchNorm>(module)) {
      NoGradGuard no_grad;
      const int64_t c = bn->num_features();
      Tensor(bn->running_mean()).copy_(ops::mul(randn({c}, gen), 0.1));
      Tensor(bn->running_var()).copy_(ops::add(rand({c}, gen), 0.5));
      Tensor(bn->weight()).copy_(ops::add(rand({c}, gen), 0.5));
    }
  }
  std::map<std::string, int> bits;
  for (const QuantizableLayer& l : model->quantizable_layers()) bits[l.name] = 3;
  QuantizeOptions options;
  options.scheme = QuantScheme::kPtq;
  *layers = quantize_model(*model, bits, options);
  return model;
}

const Tensor& raw_weight(const Module& model, const std::string& name) {
  for (const auto& [n, m] : model.named_modules()) {
    if (n != name) continue;
    if (auto conv = std::dynamic_pointer_cast<Conv2d>(m)) return conv->weight();
    if (auto fc = std::dynamic_pointer_cast<Linear>(m)) return fc->weight();
  }
  throw std::runtime_error("no layer " + name);
}

TEST(BakeAdaptiveRounding, NearestRoundingThenReproducesTheLearnedRoundingAfterALoad) {
  QuantizedLayers layers;
  auto model = ptq_resnet20(2, &layers);
  Generator gen(3);
  std::vector<std::vector<float>> learned;
  for (auto& [name, layer] : layers) {
    WeightQuantizer& q = layer->weight_quantizer();
    const Tensor folded = layer->weight_and_bias().weight.detach();
    q.start_adaptive_rounding(folded);
    const std::vector<float> nearest_codes = [&] {
      q.set_rounding_hard(true);
      return layer->quantized_weight().to_vector<float>();
    }();
    {  // Decisions unlike nearest rounding: random alphas.
      NoGradGuard no_grad;
      Tensor(q.rounding_variables()).copy_(randn(folded.shape(), gen));
    }
    learned.push_back(layer->quantized_weight().to_vector<float>());
    EXPECT_NE(learned.back(), nearest_codes) << name;
    bake_adaptive_rounding(*layer, raw_weight(*model, name));
    EXPECT_FALSE(q.adaptive_rounding());
    EXPECT_EQ(layer->quantized_weight().to_vector<float>(), learned.back()) << name;
  }
  // A fresh model of another seed loads the baked state and quantizes to the same grid points.
  QuantizedLayers fresh_layers;
  auto fresh = ptq_resnet20(9, &fresh_layers);
  ASSERT_TRUE(fresh->load_state_dict(model->state_dict()).ok());
  for (size_t i = 0; i < layers.size(); ++i) {
    EXPECT_EQ(fresh_layers[i].second->quantized_weight().to_vector<float>(), learned[i])
        << layers[i].first;
  }
}

TEST(BakeAdaptiveRounding, NeedsAdaptiveRoundingAndTheLayersWeight) {
  QuantizedLayers layers;
  auto model = ptq_resnet20(4, &layers);
  QuantizedLayer& stem = *layers[0].second;
  EXPECT_THAT([&] { bake_adaptive_rounding(stem, raw_weight(*model, "conv1")); },
              ThrowsMessage<Error>(HasSubstr("the layer's weight quantizer is not rounding")));
  stem.weight_quantizer().start_adaptive_rounding(stem.weight_and_bias().weight);
  EXPECT_THAT([&] { bake_adaptive_rounding(stem, raw_weight(*model, "fc")); },
              ThrowsMessage<Error>(HasSubstr("bake_adaptive_rounding: weight of shape [10, 64]")));
}

}  // namespace
}  // namespace ompq::nn
