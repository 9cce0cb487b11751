// nn::GradScaler (dynamic loss scaling) and mixed-precision training: unscaled gradients equal
// the gradients of the unscaled loss bit for bit (the scale is a power of two); an inf/NaN
// gradient skips the optimizer step and halves the scale; the scale doubles after
// growth_interval good steps in a row; bad options and misuse. Then 30 steps of a small CNN
// (conv, batch norm, ReLU, max-pool, linear) on a fixed synthetic batch under bf16 autocast and
// under f16 autocast with loss scaling lower the loss as f32 training does.
#include "layers/grad_scaler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/autocast.h"
#include "core/functional/softmax.h"
#include "core/random.h"
#include "layers/activation.h"
#include "layers/conv.h"
#include "layers/flatten.h"
#include "layers/linear.h"
#include "layers/norm.h"
#include "layers/pooling.h"
#include "layers/sequential.h"

namespace ompq::nn {
namespace {

using ::testing::HasSubstr;

SgdOptions plain_sgd(double lr) {
  SgdOptions options;
  options.lr = lr;
  return options;
}

TEST(GradScaler, UnscaledGradientsEqualTheUnscaledLossGradients) {
  Generator gen(1);
  Linear layer(12, 5, /*bias=*/true, gen);
  const Tensor x = randn({6, 12}, gen);
  const Tensor labels = Tensor::from_vector<int64_t>({0, 1, 2, 3, 4, 0}, {6});
  cross_entropy(layer(x), labels).backward();
  std::vector<std::vector<float>> reference;
  for (const Tensor& p : layer.parameters()) reference.push_back(p.grad().to_vector<float>());

  SGD optimizer(layer.parameters(), plain_sgd(0.1));
  optimizer.zero_grad();
  GradScaler scaler;
  EXPECT_EQ(scaler.scale_value(), 65536.0);
  const Tensor loss = cross_entropy(layer(x), labels);
  const Tensor scaled = scaler.scale(loss);
  EXPECT_EQ(scaled.item<float>(), loss.item<float>() * 65536.0f);
  scaled.backward();
  EXPECT_NE(layer.parameters()[0].grad().to_vector<float>(), reference[0]) << "not yet unscaled";
  EXPECT_TRUE(scaler.unscale_(optimizer));
  for (size_t i = 0; i < reference.size(); ++i) {
    EXPECT_EQ(layer.parameters()[i].grad().to_vector<float>(), reference[i]) << "parameter " << i;
  }
  const std::vector<float> before = layer.parameters()[0].to_vector<float>();
  EXPECT_TRUE(scaler.step(optimizer)) << "already unscaled: steps without unscaling again";
  EXPECT_NE(layer.parameters()[0].to_vector<float>(), before);
  scaler.update();
  EXPECT_EQ(scaler.scale_value(), 65536.0);
  EXPECT_EQ(scaler.growth_tracker(), 1);
}

// One iteration whose gradients are `grad_value` everywhere (inf/NaN to simulate an overflow).
bool iterate(GradScaler& scaler, SGD& optimizer, const Tensor& param, float grad_value) {
  param.set_grad(Tensor::full(param.shape(), grad_value));
  const bool stepped = scaler.step(optimizer);
  scaler.update();
  return stepped;
}

TEST(GradScaler, NonFiniteGradientsSkipTheStepAndHalveTheScale) {
  for (float bad : {std::numeric_limits<float>::infinity(), std::nanf("")}) {
    Tensor param = Tensor::ones({3}).set_requires_grad(true);
    SGD optimizer({param}, plain_sgd(1.0));
    GradScaler scaler;
    EXPECT_TRUE(iterate(scaler, optimizer, param, 65536.0f));
    EXPECT_EQ(param.to_vector<float>(), std::vector<float>(3, 0.0f)) << "1 - 1 * 65536/65536";
    EXPECT_EQ(scaler.growth_tracker(), 1);
    EXPECT_FALSE(iterate(scaler, optimizer, param, bad));
    EXPECT_EQ(param.to_vector<float>(), std::vector<float>(3, 0.0f)) << "the step was skipped";
    EXPECT_EQ(scaler.scale_value(), 32768.0);
    EXPECT_EQ(scaler.growth_tracker(), 0);
    EXPECT_FALSE(iterate(scaler, optimizer, param, bad));
    EXPECT_EQ(scaler.scale_value(), 16384.0);
  }
}

TEST(GradScaler, GrowsAfterGrowthIntervalGoodStepsInARow) {
  Tensor param = Tensor::zeros({2}).set_requires_grad(true);
  SGD optimizer({param}, plain_sgd(0.0));
  GradScalerOptions options;
  options.init_scale = 8.0;
  options.growth_interval = 3;
  GradScaler scaler(options);
  iterate(scaler, optimizer, param, 1.0f);
  iterate(scaler, optimizer, param, 1.0f);
  iterate(scaler, optimizer, param, INFINITY);  // restarts the count
  EXPECT_EQ(scaler.scale_value(), 4.0);
  iterate(scaler, optimizer, param, 1.0f);
  iterate(scaler, optimizer, param, 1.0f);
  EXPECT_EQ(scaler.scale_value(), 4.0);
  iterate(scaler, optimizer, param, 1.0f);
  EXPECT_EQ(scaler.scale_value(), 8.0);
  EXPECT_EQ(scaler.growth_tracker(), 0);
}

TEST(GradScaler, RejectsBadOptionsAndMisuse) {
  auto with = [](auto set) {
    GradScalerOptions options;
    set(options);
    return options;
  };
  EXPECT_THAT([&] { GradScaler s(with([](auto& o) { o.init_scale = 0; })); },
              ::testing::ThrowsMessage<Error>(HasSubstr("init_scale must be finite and positive")));
  EXPECT_THAT([&] { GradScaler s(with([](auto& o) { o.growth_factor = 1; })); },
              ::testing::ThrowsMessage<Error>(HasSubstr("growth_factor must be > 1, got 1")));
  EXPECT_THAT([&] { GradScaler s(with([](auto& o) { o.backoff_factor = 1.5; })); },
              ::testing::ThrowsMessage<Error>(HasSubstr("backoff_factor must be in (0, 1)")));
  EXPECT_THAT([&] { GradScaler s(with([](auto& o) { o.growth_interval = 0; })); },
              ::testing::ThrowsMessage<Error>(HasSubstr("growth_interval must be positive")));
  Tensor param = Tensor::zeros({2}).set_requires_grad(true);
  SGD optimizer({param}, plain_sgd(0.1));
  GradScaler scaler;
  EXPECT_THAT([&] { scaler.update(); },
              ::testing::ThrowsMessage<Error>(HasSubstr("update() without step()")));
  param.set_grad(Tensor::ones({2}));
  scaler.unscale_(optimizer);
  EXPECT_THAT([&] { scaler.unscale_(optimizer); },
              ::testing::ThrowsMessage<Error>(HasSubstr("unscale_() was already called")));
}

// 1x12x12 -> conv 3x3 (16) -> BN -> ReLU -> max-pool -> conv 3x3 (16) -> BN -> ReLU -> linear (10):
// the layers autocast runs in low precision and those it leaves in f32.
std::shared_ptr<Sequential> small_cnn(Generator& gen) {
  const Conv2dParams same = {{1, 1}, {1, 1}, {1, 1}, 1};
  auto model = std::make_shared<Sequential>();
  model->push_back(std::make_shared<Conv2d>(1, 16, std::array<int64_t, 2>{3, 3}, same, true, gen));
  model->push_back(std::make_shared<BatchNorm2d>(16));
  model->push_back(std::make_shared<ReLU>());
  model->push_back(std::make_shared<MaxPool2d>(Pool2dParams{}));
  model->push_back(
      std::make_shared<Conv2d>(16, 16, std::array<int64_t, 2>{3, 3}, same, false, gen));
  model->push_back(std::make_shared<BatchNorm2d>(16));
  model->push_back(std::make_shared<ReLU>());
  model->push_back(std::make_shared<Flatten>());
  model->push_back(std::make_shared<Linear>(16 * 6 * 6, 10, true, gen));
  return model;
}

// The cross-entropy of each of 30 SGD steps on one fixed batch (separable: each class is a noisy
// copy of its own random image) at `precision`; f16 scales the loss.
std::vector<double> train_small_cnn(DType precision) {
  Generator gen(5);
  std::shared_ptr<Sequential> model = small_cnn(gen);
  const int64_t batch = 20, pixels = 12 * 12;
  const std::vector<float> proto = randn({10, pixels}, gen).to_vector<float>();
  const std::vector<float> noise = randn({batch, pixels}, gen).to_vector<float>();
  std::vector<int64_t> label_values(batch);
  std::vector<float> images;
  for (int64_t i = 0; i < batch; ++i) {
    label_values[i] = i % 10;
    for (int64_t j = 0; j < pixels; ++j) {
      images.push_back(proto[label_values[i] * pixels + j] + 0.3f * noise[i * pixels + j]);
    }
  }
  const Tensor x = Tensor::from_vector(images, {batch, 1, 12, 12});
  const Tensor labels = Tensor::from_vector(label_values, {batch});
  SgdOptions options;
  options.lr = 0.02;
  options.momentum = 0.9;
  SGD optimizer(model->parameters(), options);
  GradScaler scaler;
  std::vector<double> losses;
  for (int step = 0; step < 30; ++step) {
    Tensor loss;
    {
      AutocastGuard autocast(precision);
      loss = cross_entropy((*model)(x), labels);
    }
    losses.push_back(loss.item<double>());
    optimizer.zero_grad();
    if (precision == DType::kF16) {
      scaler.scale(loss).backward();
      EXPECT_TRUE(scaler.step(optimizer)) << "step " << step << ": no overflow expected";
      scaler.update();
    } else {
      loss.backward();
      optimizer.step();
    }
    for (const Tensor& p : model->parameters()) EXPECT_EQ(p.grad().dtype(), DType::kF32);
  }
  return losses;
}

TEST(MixedPrecisionTraining, SmallCnnLearnsInBf16AndF16LikeF32) {
  const std::vector<double> f32 = train_small_cnn(DType::kF32);
  ASSERT_LT(f32.back(), 0.25 * f32.front());
  for (DType precision : {DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(dtype_name(precision));
    const std::vector<double> low = train_small_cnn(precision);
    EXPECT_NEAR(low.front(), f32.front(), 0.01 * f32.front()) << "the same initial model";
    EXPECT_NE(low.front(), f32.front()) << "the low precision ran";
    EXPECT_LT(low.back(), 0.25 * low.front());
    EXPECT_NEAR(low.back(), f32.back(), 0.1 * f32.front());
  }
}

}  // namespace
}  // namespace ompq::nn
