// Quantization building blocks: QuantSpec presets and checks, ranges to scales, the weight
// quantizers (HAWQ-V3 min/max, BRECQ MSE search against a brute-force loop), the activation
// quantizers (EMA ranges with momentum 0.99, learned step size with the LSQ gradient), and BN
// folding (exact against the unfolded modules in eval mode; f64 gradient check).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/autograd.h"
#include "core/functional/conv.h"
#include "core/functional/linalg.h"
#include "core/functional/norm.h"
#include "core/functional/quant.h"
#include "core/ops/elementwise.h"
#include "core/random.h"
#include "layers/conv.h"
#include "layers/norm.h"
#include "layers/quant/act_quantizer.h"
#include "layers/quant/bn_fold.h"
#include "layers/quant/mse_range.h"
#include "layers/quant/quant_spec.h"
#include "layers/quant/weight_quantizer.h"
#include "tests/gradcheck.h"

namespace ompq::nn {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

TEST(QuantSpec, PresetsFollowTheReferenceMethods) {
  QuantSpec w = qat_weight_spec(4);
  EXPECT_TRUE(w.is_signed && w.symmetric);
  EXPECT_EQ(w.axis, 0);
  EXPECT_EQ(w.range().qmin, -8);
  EXPECT_EQ(w.range().qmax, 7);
  QuantSpec a8 = qat_activation_spec(8), a6 = qat_activation_spec(6);
  EXPECT_TRUE(a8.is_signed && a8.symmetric && !a8.axis);
  EXPECT_TRUE(!a6.is_signed && a6.symmetric);
  EXPECT_EQ(a6.qmax(), 63);
  QuantSpec pw = ptq_weight_spec(3), pa = ptq_activation_spec(8);
  EXPECT_TRUE(!pw.is_signed && !pw.symmetric);
  EXPECT_EQ(pw.axis, 0);
  EXPECT_TRUE(!pa.is_signed && !pa.symmetric && !pa.axis);
  EXPECT_EQ(pw.str(), "3-bit unsigned affine per-channel(axis 0)");
  EXPECT_EQ(a8.str(), "8-bit signed symmetric per-tensor");
}

TEST(QuantSpec, BadSpecsAreRejected) {
  EXPECT_THAT([] { qat_weight_spec(1); },
              ThrowsMessage<Error>(HasSubstr("qat_weight_spec: 1-bit quantization (expected 2..8 "
                                             "bits)")));
  EXPECT_THAT([] { ptq_activation_spec(9); }, ThrowsMessage<Error>(HasSubstr("9-bit")));
  QuantSpec affine = ptq_weight_spec(4);
  affine.scale = Tensor::ones({3});
  EXPECT_THAT([&] { check_spec(affine, "test"); },
              ThrowsMessage<Error>(HasSubstr("test: a 4-bit unsigned affine per-channel(axis 0) "
                                             "quantizer has no zero point")));
  QuantSpec per_tensor = qat_activation_spec(8);
  per_tensor.scale = Tensor::ones({3});
  EXPECT_THAT([&] { check_spec(per_tensor, "test"); },
              ThrowsMessage<Error>(HasSubstr("per-tensor scale of shape [3]")));
  QuantSpec symmetric = qat_weight_spec(8);
  symmetric.scale = Tensor::ones({2});
  symmetric.zero_point = Tensor::zeros({2});
  EXPECT_THAT([&] { check_spec(symmetric, "test"); },
              ThrowsMessage<Error>(HasSubstr("has a zero point")));
}

TEST(QuantSpec, ScalesFromRanges) {
  // symmetric signed 4 bits: max(|-0.5|, 0.7) / 7
  RangeParams s = params_from_range({-0.5, -0.02}, {0.7, 0.014}, qat_weight_spec(4));
  EXPECT_DOUBLE_EQ(s.scale[0], 0.1);
  EXPECT_DOUBLE_EQ(s.scale[1], 0.02 / 7);
  EXPECT_TRUE(s.zero_point.empty());
  // symmetric unsigned 4 bits (HAWQ-V3 "asymmetric" activations): (max - min) / 15
  RangeParams u = params_from_range({-0.3}, {1.2}, qat_activation_spec(4));
  EXPECT_DOUBLE_EQ(u.scale[0], 0.1);
  // affine 4 bits: (max - min) / 15 and round(-min / scale) = round(6.25) = 6
  RangeParams a = params_from_range({-0.5}, {0.7}, ptq_weight_spec(4));
  EXPECT_DOUBLE_EQ(a.scale[0], 1.2 / 15);
  EXPECT_EQ(a.zero_point[0], 6.0);
  // Ties round half to even: -min / scale = 2.5 -> 2.
  EXPECT_EQ(params_from_range({-0.25}, {1.25}, ptq_weight_spec(4)).zero_point[0], 2.0);
  // An all-zero channel gets the floor scale instead of a division by zero.
  EXPECT_EQ(params_from_range({0.0}, {0.0}, qat_weight_spec(8)).scale[0], 1e-8);
}

// BRECQ's search written out directly: 80 shrinking ranges per channel, Lp-2.4 error, strict
// improvement.
RangeParams brute_force_mse(const std::vector<double>& w, int64_t channels, int bits) {
  const int64_t k = static_cast<int64_t>(w.size()) / channels;
  const double levels = std::pow(2.0, bits) - 1;
  RangeParams best;
  for (int64_t c = 0; c < channels; ++c) {
    double lo = w[c * k], hi = w[c * k];
    for (int64_t i = 0; i < k; ++i) {
      lo = std::min(lo, w[c * k + i]);
      hi = std::max(hi, w[c * k + i]);
    }
    double best_score = 1e10, best_scale = 0, best_zero = 0;
    for (int i = 0; i < 80; ++i) {
      const double mx = hi * (1.0 - 0.01 * i), mn = lo * (1.0 - 0.01 * i);
      const double delta = (mx - mn) / levels, zero = std::nearbyint(-mn / delta);
      double score = 0;
      for (int64_t j = 0; j < k; ++j) {
        const double q =
            std::min(std::max(std::nearbyint(w[c * k + j] / delta) + zero, 0.0), levels);
        score += std::pow(std::fabs(w[c * k + j] - (q - zero) * delta), 2.4);
      }
      score /= k;
      if (score < best_score) {
        best_score = score;
        best_scale = delta;
        best_zero = zero;
      }
    }
    best.scale.push_back(best_scale);
    best.zero_point.push_back(best_zero);
  }
  return best;
}

TEST(WeightQuantizer, MseSearchMatchesBruteForce) {
  Generator gen(3);
  for (int bits : {2, 3, 4, 8}) {
    Tensor w = randn({6, 2, 3, 3}, gen, DType::kF64);
    RangeParams ours = mse_range_params(w, ptq_weight_spec(bits));
    RangeParams ref = brute_force_mse(w.to_vector<double>(), 6, bits);
    for (int c = 0; c < 6; ++c) {
      EXPECT_DOUBLE_EQ(ours.scale[c], ref.scale[c]) << bits << " bits, channel " << c;
      EXPECT_EQ(ours.zero_point[c], ref.zero_point[c]) << bits << " bits, channel " << c;
    }
  }
}

TEST(WeightQuantizer, MseSearchBeatsTheFullRangeAndThenStaysFixed) {
  Generator gen(4);
  Tensor w = randn({8, 16}, gen);
  WeightQuantizer q(ptq_weight_spec(3), WeightRange::kMse, 8);
  Tensor wq = q.forward(w);
  // The searched grid's Lp-2.4 error is at most the full min/max grid's (candidate 0).
  const ChannelRange full = channel_range(w, 0);
  RangeParams minmax = params_from_range(full.min, full.max, ptq_weight_spec(3));
  Tensor wm =
      ops::fake_quantize(w, Tensor::from_vector(minmax.scale, {8}).to(DType::kF32),
                         Tensor::from_vector(minmax.zero_point, {8}).to(DType::kF32), 0, {0, 7});
  auto lp = [&](const Tensor& a) {
    double s = 0;
    std::vector<float> x = w.to_vector<float>(), y = a.to_vector<float>();
    for (size_t i = 0; i < x.size(); ++i) s += std::pow(std::fabs(x[i] - y[i]), 2.4);
    return s;
  };
  EXPECT_LE(lp(wq), lp(wm));
  // The output is on the quantizer's grid.
  EXPECT_EQ(wq.to_vector<float>(), fake_quantize(w, q.spec()).to_vector<float>());
  // Calibrated once: new weights keep the grid.
  const std::vector<float> scale = q.spec().scale.to_vector<float>();
  q.forward(ops::mul(w, 3.0));
  EXPECT_EQ(q.spec().scale.to_vector<float>(), scale);
}

TEST(WeightQuantizer, LoadedScaleCountsAsCalibrated) {
  Generator gen(5);
  WeightQuantizer source(ptq_weight_spec(4), WeightRange::kMse, 4);
  source.forward(randn({4, 5}, gen));
  WeightQuantizer loaded(ptq_weight_spec(4), WeightRange::kMse, 4);
  ASSERT_TRUE(loaded.load_state_dict(source.state_dict()).ok());
  Tensor other = randn({4, 5}, gen);
  loaded.forward(other);
  EXPECT_EQ(loaded.spec().scale.to_vector<float>(), source.spec().scale.to_vector<float>());
  EXPECT_EQ(loaded.spec().zero_point.to_vector<float>(),
            source.spec().zero_point.to_vector<float>());
}

TEST(WeightQuantizer, MinMaxFollowsTheWeightsAtEveryForward) {
  // HAWQ-V3: s_c = max |W_c| / (2^(b-1) - 1).
  Tensor w = Tensor::from_vector<float>({0.7f, -0.35f, 0.1f, -1.4f, 0.2f, 0.3f}, {2, 3});
  WeightQuantizer q(qat_weight_spec(4), WeightRange::kMinMax, 2);
  Tensor wq = q.forward(w);
  EXPECT_EQ(q.spec().scale.to_vector<float>(), (std::vector<float>{0.1f, 0.2f}));
  // 0.7 / 0.1 = 7, -0.35 / 0.1 = -3.5 -> -4 (half to even), 0.1 -> 1; -1.4 / 0.2 = -7, 1, 1.5 -> 2
  std::vector<float> expected = {0.7f, -0.4f, 0.1f, -1.4f, 0.2f, 0.4f};
  std::vector<float> got = wq.to_vector<float>();
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(got[i], expected[i], 1e-6f) << i;
  q.forward(ops::mul(w, 2.0));
  EXPECT_EQ(q.spec().scale.to_vector<float>(), (std::vector<float>{0.2f, 0.4f}));
}

TEST(WeightQuantizer, StraightThroughGradientAndDisabledPassThrough) {
  Generator gen(6);
  Tensor w = randn({3, 4}, gen).set_requires_grad(true);
  WeightQuantizer q(qat_weight_spec(2), WeightRange::kMinMax, 3);
  Tensor g = randn({3, 4}, gen);
  q.forward(w).backward(g);
  // With a symmetric min/max grid every weight is inside the range: the gradient passes whole.
  EXPECT_EQ(w.grad().to_vector<float>(), g.to_vector<float>());
  q.set_enabled(false);
  EXPECT_TRUE(q.forward(w).same(w));
}

TEST(WeightQuantizer, BadArguments) {
  EXPECT_THAT([] { WeightQuantizer(qat_activation_spec(8), WeightRange::kMinMax, 4); },
              ThrowsMessage<Error>(HasSubstr("WeightQuantizer: 4 channels for a 8-bit signed "
                                             "symmetric per-tensor quantizer")));
  QuantSpec filled = qat_weight_spec(8);
  filled.scale = Tensor::ones({2});
  EXPECT_THAT([&] { WeightQuantizer(filled, WeightRange::kMinMax, 2); },
              ThrowsMessage<Error>(HasSubstr("the spec must be a template")));
  WeightQuantizer q(qat_weight_spec(8), WeightRange::kMinMax, 4);
  EXPECT_THAT(
      [&] {
        q.forward(Tensor::ones({3, 2}));
      },
      ThrowsMessage<Error>(HasSubstr("WeightQuantizer: weight of shape [3, 2] for a 8-bit "
                                     "signed symmetric per-channel(axis 0) quantizer of 4 "
                                     "channels")));
}

TEST(ActivationQuantizer, EmaRangeWithMomentum099) {
  ActivationQuantizer q(qat_activation_spec(8), ActRange::kEmaMinMax);
  q.eval();  // HAWQ-V3 trains in eval mode: ranges still move
  q.forward(Tensor::from_vector<float>({-1.f, 0.5f, 2.f}, {3}));
  EXPECT_FLOAT_EQ(q.state_dict().at("running_min").item<float>(), -1.f);
  EXPECT_FLOAT_EQ(q.state_dict().at("running_max").item<float>(), 2.f);
  EXPECT_FLOAT_EQ(q.spec().scale.item<float>(), 2.f / 127);
  q.forward(Tensor::from_vector<float>({-3.f, 4.f}, {2}));
  const float lo = 0.99f * -1.f + 0.01f * -3.f, hi = 0.99f * 2.f + 0.01f * 4.f;
  EXPECT_FLOAT_EQ(q.state_dict().at("running_min").item<float>(), lo);
  EXPECT_FLOAT_EQ(q.state_dict().at("running_max").item<float>(), hi);
  EXPECT_FLOAT_EQ(q.spec().scale.item<float>(), hi / 127);
  // Frozen: the range stays, values outside it clamp.
  q.set_frozen(true);
  Tensor y = q.forward(Tensor::from_vector<float>({100.f}, {1}));
  EXPECT_FLOAT_EQ(q.state_dict().at("running_max").item<float>(), hi);
  EXPECT_NEAR(y.item<float>(), 127 * hi / 127, 1e-5);
}

TEST(ActivationQuantizer, UnsignedLowBitRangeUsesMaxMinusMin) {
  ActivationQuantizer q(qat_activation_spec(4), ActRange::kEmaMinMax);
  Tensor y = q.forward(Tensor::from_vector<float>({-0.5f, 0.f, 1.f}, {3}));
  EXPECT_FLOAT_EQ(q.spec().scale.item<float>(), 0.1f);
  // Codes in [0, 15] without zero point: negative values become 0 (the requantizer acts as ReLU).
  std::vector<float> v = y.to_vector<float>();
  EXPECT_EQ(v[0], 0.f);
  EXPECT_EQ(v[1], 0.f);
  EXPECT_FLOAT_EQ(v[2], 1.f);
}

TEST(ActivationQuantizer, FrozenBeforeAnyDataIsAnError) {
  ActivationQuantizer q(qat_activation_spec(8), ActRange::kEmaMinMax);
  q.set_frozen(true);
  EXPECT_THAT([&] { q.forward(Tensor::ones({2})); },
              ThrowsMessage<Error>(HasSubstr("frozen before observing any data")));
}

TEST(ActivationQuantizer, LearnedStepStartsAtTheMseSearchAndGetsTheLsqGradient) {
  Generator gen(7);
  Tensor x = ops::relu(randn({4, 3, 5, 5}, gen));
  ActivationQuantizer q(ptq_activation_spec(4), ActRange::kLearnedStep);
  Tensor y = q.forward(x);
  RangeParams expected = mse_range_params(x, ptq_activation_spec(4));
  EXPECT_FLOAT_EQ(q.spec().scale.item<float>(), static_cast<float>(expected.scale[0]));
  EXPECT_EQ(q.spec().zero_point.item<float>(), static_cast<float>(expected.zero_point[0]));
  // The scale is a parameter; its gradient is the straight-through LSQ one.
  ASSERT_EQ(q.named_parameters().size(), 1u);
  EXPECT_EQ(q.named_parameters()[0].first, "scale");
  Tensor g = randn(x.shape(), gen);
  y.backward(g);
  ops::FakeQuantGradients ref = ops::fake_quantize_backward(
      g, x, q.spec().scale.detach(), q.spec().zero_point, std::nullopt, {0, 15}, true, false, true);
  EXPECT_FLOAT_EQ(q.spec().scale.grad().item<float>(), ref.scale.item<float>());
  EXPECT_NE(ref.scale.item<float>(), 0.f);
  // Later batches do not move the scale by themselves.
  const float scale = q.spec().scale.item<float>();
  q.forward(ops::mul(x, 5.0));
  EXPECT_EQ(q.spec().scale.item<float>(), scale);
}

TEST(ActivationQuantizer, DisabledPassesThroughAndPerChannelIsRejected) {
  ActivationQuantizer q(qat_activation_spec(8), ActRange::kEmaMinMax);
  q.set_enabled(false);
  Tensor x = Tensor::ones({3});
  EXPECT_TRUE(q.forward(x).same(x));
  EXPECT_THAT([] { ActivationQuantizer(qat_weight_spec(8), ActRange::kEmaMinMax); },
              ThrowsMessage<Error>(HasSubstr("activations are quantized per tensor")));
  ActQuantOptions bad;
  bad.momentum = 1.0;
  EXPECT_THAT([&] { ActivationQuantizer(qat_activation_spec(8), ActRange::kEmaMinMax, bad); },
              ThrowsMessage<Error>(HasSubstr("momentum 1 (expected in [0, 1))")));
}

// A BatchNorm2d with non-trivial statistics and affine parameters.
void randomize_batch_norm(BatchNorm& bn, Generator& gen) {
  NoGradGuard no_grad;
  const int64_t c = bn.num_features();
  Tensor(bn.running_mean()).copy_(randn({c}, gen));
  Tensor(bn.running_var()).copy_(ops::add(rand({c}, gen), 0.5));
  if (bn.weight().defined()) {
    Tensor(bn.weight()).copy_(randn({c}, gen));
    Tensor(bn.bias()).copy_(randn({c}, gen));
  }
}

Tensor f64(const Tensor& t) { return t.defined() ? t.detach().to(DType::kF64) : Tensor(); }

TEST(BatchNormFold, ExactAgainstTheUnfoldedModulesInEvalMode) {
  Generator gen(8);
  for (bool conv_bias : {false, true}) {
    for (bool affine : {true, false}) {
      Conv2dParams p;
      p.padding = {1, 1};
      p.stride = {2, 2};
      Conv2d conv(3, 5, {3, 3}, p, conv_bias, gen);
      BatchNormOptions options;
      options.affine = affine;
      BatchNorm2d bn(5, options);
      randomize_batch_norm(bn, gen);
      bn.eval();
      const double eps = bn.options().eps;
      // In f64 the folded conv equals conv followed by the batch norm to rounding.
      Tensor x = randn({2, 3, 6, 6}, gen, DType::kF64);
      Tensor unfolded = batch_norm(conv2d(x, f64(conv.weight()), f64(conv.bias()), p),
                                   f64(bn.weight()), f64(bn.bias()), f64(bn.running_mean()),
                                   f64(bn.running_var()), /*training=*/false, 0.1, eps);
      FoldedWeights folded =
          fold_batch_norm(f64(conv.weight()), f64(conv.bias()), f64(bn.weight()), f64(bn.bias()),
                          bn.running_mean(), bn.running_var(), eps);
      std::vector<double> a = unfolded.to_vector<double>(),
                          b = conv2d(x, folded.weight, folded.bias, p).to_vector<double>();
      for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-12) << i;
      // The module overload in f32 against the modules themselves.
      Tensor x32 = x.to(DType::kF32);
      FoldedWeights f32 = fold_batch_norm(conv.weight(), conv.bias(), bn);
      std::vector<float> c = bn.forward(conv.forward(x32)).to_vector<float>(),
                         d = conv2d(x32, f32.weight, f32.bias, p).to_vector<float>();
      for (size_t i = 0; i < c.size(); ++i) ASSERT_NEAR(c[i], d[i], 1e-5 * (1 + std::fabs(c[i])));
    }
  }
}

TEST(BatchNormFold, LinearWeights) {
  Generator gen(9);
  Tensor w = randn({4, 6}, gen, DType::kF64), b = randn({4}, gen, DType::kF64);
  BatchNorm1d bn(4);
  randomize_batch_norm(bn, gen);
  bn.eval();
  Tensor x = randn({3, 6}, gen, DType::kF64);
  FoldedWeights folded = fold_batch_norm(w, b, f64(bn.weight()), f64(bn.bias()), bn.running_mean(),
                                         bn.running_var(), 1e-5);
  Tensor unfolded = batch_norm(linear(x, w, b), f64(bn.weight()), f64(bn.bias()),
                               f64(bn.running_mean()), f64(bn.running_var()), false, 0.1, 1e-5);
  std::vector<double> a = unfolded.to_vector<double>(),
                      c = linear(x, folded.weight, folded.bias).to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], c[i], 1e-12) << i;
}

TEST(BatchNormFold, GradientsFlowToWeightBiasGammaAndBeta) {
  Generator gen(10);
  Tensor x = randn({2, 3, 5, 5}, gen, DType::kF64);
  Tensor mean = randn({4}, gen, DType::kF64), var = ops::add(rand({4}, gen, DType::kF64), 0.5);
  Conv2dParams p;
  p.padding = {1, 1};
  testing::expect_gradients_match(
      [&](const std::vector<Tensor>& in) {
        FoldedWeights f = fold_batch_norm(in[0], in[1], in[2], in[3], mean, var, 1e-5);
        return conv2d(x, f.weight, f.bias, p);
      },
      {randn({4, 3, 3, 3}, gen, DType::kF64), randn({4}, gen, DType::kF64),
       randn({4}, gen, DType::kF64), randn({4}, gen, DType::kF64)});
}

TEST(BatchNormFold, BadShapes) {
  Tensor w = Tensor::ones({4, 3, 1, 1});
  EXPECT_THAT(
      [&] {
        fold_batch_norm(w, Tensor(), Tensor::ones({3}), Tensor(), Tensor::zeros({4}),
                        Tensor::ones({4}), 1e-5);
      },
      ThrowsMessage<Error>(HasSubstr("fold_batch_norm: gamma of shape [3] for a weight of "
                                     "shape [4, 3, 1, 1] (expected [4])")));
  EXPECT_THAT([&] { fold_batch_norm(w, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), 1e-5); },
              ThrowsMessage<Error>(HasSubstr("running statistics are undefined")));
}

}  // namespace
}  // namespace ompq::nn
