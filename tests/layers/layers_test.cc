// Layers: forward semantics and bad arguments, BatchNorm's buffers, and a small CNN whose loss
// falls under SGD on fixed data.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "core/functional/conv.h"
#include "core/functional/softmax.h"
#include "layers/activation.h"
#include "layers/conv.h"
#include "layers/dropout.h"
#include "layers/flatten.h"
#include "layers/linear.h"
#include "layers/norm.h"
#include "layers/optim.h"
#include "layers/pooling.h"
#include "layers/sequential.h"

namespace ompq::nn {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

TEST(LayersTest, Conv2dAppliesItsParameters) {
  Generator gen(1);
  Conv2d conv(3, 4, {3, 3}, Conv2dParams{{2, 2}, {1, 1}, {1, 1}, 1}, true, gen);
  Tensor x = randn({2, 3, 7, 7}, gen);
  Tensor y = conv.forward(x);
  EXPECT_EQ(y.shape(), (Shape{2, 4, 4, 4}));
  EXPECT_EQ(y.to_vector<float>(),
            conv2d(x, conv.weight(), conv.bias(), conv.params()).to_vector<float>());
}

TEST(LayersTest, LinearMapsTheLastDim) {
  Generator gen(2);
  Linear fc(3, 2, true, gen);
  Tensor x = Tensor::from_vector<float>({1, 0, 0, 0, 1, 0}, {2, 3});
  std::vector<float> y = fc.forward(x).to_vector<float>();
  std::vector<float> w = fc.weight().to_vector<float>(), b = fc.bias().to_vector<float>();
  // Row 0 picks weight column 0, row 1 column 1.
  EXPECT_NEAR(y[0], w[0] + b[0], 1e-6);
  EXPECT_NEAR(y[1], w[3] + b[1], 1e-6);
  EXPECT_NEAR(y[2], w[1] + b[0], 1e-6);
  EXPECT_NEAR(y[3], w[4] + b[1], 1e-6);
  EXPECT_THAT(
      [&] {
        fc.forward(Tensor::zeros({2, 4}));
      },
      ThrowsMessage<Error>(
          HasSubstr("Linear: input of shape [2, 4] does not end in in_features 3")));
}

TEST(LayersTest, BatchNormTracksBatchesOnlyInTraining) {
  BatchNorm2d bn(2);
  Tensor x = Tensor::from_vector<float>({1, 3, 5, 7, 0, 0, 0, 0}, {2, 2, 1, 2});
  bn.forward(x);
  bn.forward(x);
  EXPECT_EQ(bn.num_batches_tracked().item<int64_t>(), 2);
  // Channel 0 holds {1, 3, 0, 0}: mean 1, unbiased var 2; after two updates with momentum 0.1:
  // 0.19 * 1 and 0.81 * 1 + 0.19 * 2.
  EXPECT_NEAR(bn.running_mean().to_vector<float>()[0], 0.19, 1e-6);
  EXPECT_NEAR(bn.running_var().to_vector<float>()[0], 1.19, 1e-6);
  bn.eval();
  Tensor y = bn.forward(x);
  EXPECT_EQ(bn.num_batches_tracked().item<int64_t>(), 2);
  // Eval normalizes with the running statistics.
  EXPECT_NEAR(y.to_vector<float>()[0], (1 - 0.19) / std::sqrt(1.19 + 1e-5), 1e-5);
}

TEST(LayersTest, BatchNormChecksItsInput) {
  BatchNorm2d bn(3);
  EXPECT_THAT(
      [&] {
        bn.forward(Tensor::zeros({2, 3}));
      },
      ThrowsMessage<Error>(
          HasSubstr("BatchNorm2d: input of shape [2, 3] has 2 dims (expected 4)")));
  EXPECT_THAT(
      [&] {
        bn.forward(Tensor::zeros({2, 4, 1, 1}));
      },
      ThrowsMessage<Error>(HasSubstr("has 4 channels (expected 3)")));
  BatchNorm1d bn1(3);
  EXPECT_EQ(bn1.forward(randn({4, 3})).shape(), (Shape{4, 3}));
  EXPECT_EQ(bn1.forward(randn({4, 3, 5})).shape(), (Shape{4, 3, 5}));
  EXPECT_THAT(
      [&] {
        bn1.forward(Tensor::zeros({2, 3, 1, 1}));
      },
      ThrowsMessage<Error>(HasSubstr("(expected 2 or 3)")));
  EXPECT_THAT([] { BatchNorm2d(0); }, ThrowsMessage<Error>(HasSubstr("num_features 0")));
  EXPECT_THAT([] { BatchNorm2d(2, BatchNormOptions{0.0}); },
              ThrowsMessage<Error>(HasSubstr("eps 0")));
  EXPECT_THAT(
      [] {
        BatchNorm2d(2, BatchNormOptions{1e-5, 1.5});
      },
      ThrowsMessage<Error>(HasSubstr("momentum 1.5")));
}

TEST(LayersTest, ActivationsPoolingFlatten) {
  Tensor x = Tensor::from_vector<float>({-1, 2, 7, 0.5}, {1, 1, 2, 2});
  EXPECT_EQ(ReLU().forward(x).to_vector<float>(), (std::vector<float>{0, 2, 7, 0.5}));
  EXPECT_EQ(ReLU6().forward(x).to_vector<float>(), (std::vector<float>{0, 2, 6, 0.5}));
  EXPECT_EQ(MaxPool2d(Pool2dParams{}).forward(x).to_vector<float>(), (std::vector<float>{7}));
  EXPECT_EQ(AvgPool2d(Pool2dParams{}).forward(x).to_vector<float>(), (std::vector<float>{2.125}));
  EXPECT_EQ(AdaptiveAvgPool2d({1, 1}).forward(x).to_vector<float>(), (std::vector<float>{2.125}));
  EXPECT_EQ(Flatten().forward(Tensor::zeros({2, 3, 4, 5})).shape(), (Shape{2, 60}));
  EXPECT_EQ(Flatten(0, 1).forward(Tensor::zeros({2, 3, 4})).shape(), (Shape{6, 4}));
}

TEST(LayersTest, DropoutDropsInTrainingOnly) {
  Generator gen(3);
  Dropout drop(0.5, gen);
  Tensor x = Tensor::ones({1000});
  std::vector<float> y = drop.forward(x).to_vector<float>();
  int zeros = 0;
  for (float v : y) {
    EXPECT_TRUE(v == 0.0f || v == 2.0f);
    zeros += v == 0.0f;
  }
  EXPECT_GT(zeros, 400);
  EXPECT_LT(zeros, 600);
  drop.eval();
  EXPECT_EQ(drop.forward(x).to_vector<float>(), x.to_vector<float>());
  EXPECT_THAT([] { Dropout(1.0); }, ThrowsMessage<Error>(HasSubstr("Dropout: p 1")));
  EXPECT_THAT([] { Dropout(-0.1); }, ThrowsMessage<Error>(HasSubstr("Dropout: p -0.1")));
}

TEST(LayersTest, ConstructorsRejectBadShapes) {
  EXPECT_THAT(
      [] {
        Conv2d(3, 4, {3, 3}, Conv2dParams{{1, 1}, {0, 0}, {1, 1}, 2});
      },
      ThrowsMessage<Error>(HasSubstr("groups 2 must divide in_channels 3")));
  EXPECT_THAT(
      [] {
        Conv2d(0, 4, {3, 3});
      },
      ThrowsMessage<Error>(HasSubstr("channels must be positive")));
  EXPECT_THAT([] { Conv2d(3, 4, {0, 3}); }, ThrowsMessage<Error>(HasSubstr("kernel size [0, 3]")));
  EXPECT_THAT([] { Linear(0, 2); }, ThrowsMessage<Error>(HasSubstr("features must be positive")));
  EXPECT_THAT(
      [] {
        MaxPool2d(Pool2dParams{{2, 2}, {0, 1}, {0, 0}});
      },
      ThrowsMessage<Error>(HasSubstr("MaxPool2d: kernel [2, 2], stride [0, 1]")));
  EXPECT_THAT(
      [] {
        AvgPool2d(Pool2dParams{{2, 2}, {2, 2}, {2, 0}});
      },
      ThrowsMessage<Error>(HasSubstr("padding <= kernel / 2")));
  EXPECT_THAT(
      [] {
        AdaptiveAvgPool2d({0, 1});
      },
      ThrowsMessage<Error>(HasSubstr("output size [0, 1]")));
  Sequential seq;
  EXPECT_THAT([&] { seq[0]; },
              ThrowsMessage<Error>(HasSubstr("index 0 out of range for 0 modules")));
}

// Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d -> Flatten -> Linear, trained with SGD on one fixed
// batch: the loss must fall steadily.
TEST(TrainingTest, SmallCnnLossDecreasesUnderSgd) {
  Generator gen(42);
  Sequential model({std::make_shared<Conv2d>(1, 8, std::array<int64_t, 2>{3, 3},
                                             Conv2dParams{{1, 1}, {1, 1}, {1, 1}, 1}, true, gen),
                    std::make_shared<BatchNorm2d>(8), std::make_shared<ReLU>(),
                    std::make_shared<MaxPool2d>(Pool2dParams{}), std::make_shared<Flatten>(),
                    std::make_shared<Linear>(8 * 4 * 4, 4, true, gen)});
  Tensor x = randn({16, 1, 8, 8}, gen);
  std::vector<int64_t> labels;
  for (int i = 0; i < 16; ++i) labels.push_back(i % 4);
  Tensor target = Tensor::from_vector(labels, {16});
  SGD opt(model.parameters(), SgdOptions{0.05, 0.9, 0.0, 1e-4});

  std::vector<double> losses;
  for (int step = 0; step < 12; ++step) {
    opt.zero_grad();
    Tensor loss = cross_entropy(model.forward(x), target);
    loss.backward();
    opt.step();
    losses.push_back(loss.item_double());
  }
  EXPECT_LT(losses.back(), 0.5 * losses.front())
      << "first " << losses.front() << " last " << losses.back();
  EXPECT_LT(losses[6], losses[0]);
  EXPECT_LT(losses[11], losses[6]);
}

}  // namespace
}  // namespace ompq::nn
