#include "data/synthetic.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

namespace ompq::data {
namespace {

using ::testing::HasSubstr;

SyntheticOptions options(uint64_t seed = 5) {
  SyntheticOptions o;
  o.size = 600;
  o.input_shape = {1, 6, 5};  // 30 elements: Philox blocks straddle examples
  o.num_classes = 10;
  o.seed = seed;
  return o;
}

TEST(SyntheticTest, ExampleIsAPureFunctionOfSeedAndIndex) {
  SyntheticDataset a(options()), b(options()), other_seed(options(6));
  EXPECT_EQ(a.size(), 600);
  EXPECT_EQ(a.input_shape(), (Shape{1, 6, 5}));
  for (int64_t i : {0, 1, 17, 599}) {
    Example x = a.get(i), y = b.get(i, /*sample_seed=*/123);
    EXPECT_EQ(x.input.shape(), (Shape{1, 6, 5}));
    EXPECT_EQ(x.label, y.label);
    EXPECT_EQ(x.input.to_vector<float>(), y.input.to_vector<float>());
    EXPECT_NE(x.input.to_vector<float>(), other_seed.get(i).input.to_vector<float>());
  }
  EXPECT_NE(a.get(3).input.to_vector<float>(), a.get(4).input.to_vector<float>());
}

TEST(SyntheticTest, LabelsCoverAllClassesOutOfIndexOrder) {
  SyntheticDataset ds(options());
  std::vector<int> counts(10);
  bool follows_index = true;
  for (int64_t i = 0; i < ds.size(); ++i) {
    int64_t label = ds.get(i).label;
    ASSERT_GE(label, 0);
    ASSERT_LT(label, 10);
    ++counts[label];
    follows_index = follows_index && label == i % 10;
  }
  EXPECT_FALSE(follows_index);
  for (int c = 0; c < 10; ++c) EXPECT_GT(counts[c], 30) << "class " << c;
}

TEST(SyntheticTest, WithoutNoiseInputIsLevelPlusSignPattern) {
  SyntheticOptions o = options();
  o.noise = 0.0f;
  SyntheticDataset ds(o);
  for (int64_t i = 0; i < 20; ++i) {
    Example e = ds.get(i);
    const float level = 2.0f * e.label / 9 - 1.0f;
    for (float v : e.input.to_vector<float>()) {
      ASSERT_TRUE(std::fabs(v - level - 1.0f) < 1e-6f || std::fabs(v - level + 1.0f) < 1e-6f)
          << v << " label " << e.label;
    }
  }
}

TEST(SyntheticTest, NoiseHasRequestedStandardDeviation) {
  SyntheticOptions clean = options(), noisy = options();
  clean.noise = 0.0f;
  noisy.noise = 0.5f;
  SyntheticDataset a(clean), b(noisy);
  double sum = 0, sum_sq = 0;
  int64_t n = 0;
  for (int64_t i = 0; i < 200; ++i) {
    std::vector<float> x = a.get(i).input.to_vector<float>(), y = b.get(i).input.to_vector<float>();
    for (size_t j = 0; j < x.size(); ++j, ++n) {
      double d = y[j] - x[j];
      ASSERT_LE(std::fabs(d), 0.5 * std::sqrt(3.0) + 1e-6);
      sum += d;
      sum_sq += d * d;
    }
  }
  EXPECT_NEAR(sum / n, 0.0, 0.02);
  EXPECT_NEAR(std::sqrt(sum_sq / n), 0.5, 0.02);
}

// A nearest-class-mean classifier fit on the first 400 examples classifies the other 200: the
// signal a smoke training run relies on.
TEST(SyntheticTest, IsLearnable) {
  SyntheticOptions o = options();
  o.input_shape = {1, 28, 28};
  SyntheticDataset ds(o);
  const int64_t numel = 28 * 28;
  std::vector<std::vector<double>> means(10, std::vector<double>(numel));
  std::vector<int> counts(10);
  for (int64_t i = 0; i < 400; ++i) {
    Example e = ds.get(i);
    std::vector<float> x = e.input.to_vector<float>();
    for (int64_t j = 0; j < numel; ++j) means[e.label][j] += x[j];
    ++counts[e.label];
  }
  for (int c = 0; c < 10; ++c) {
    for (double& m : means[c]) m /= std::max(counts[c], 1);
  }
  int correct = 0;
  for (int64_t i = 400; i < 600; ++i) {
    Example e = ds.get(i);
    std::vector<float> x = e.input.to_vector<float>();
    int best = -1;
    double best_distance = 0;
    for (int c = 0; c < 10; ++c) {
      double d = 0;
      for (int64_t j = 0; j < numel; ++j) d += (x[j] - means[c][j]) * (x[j] - means[c][j]);
      if (best < 0 || d < best_distance) best = c, best_distance = d;
    }
    correct += best == e.label;
  }
  EXPECT_GE(correct, 190);
}

TEST(SyntheticTest, RejectsBadOptions) {
  SyntheticOptions o = options();
  o.num_classes = 0;
  EXPECT_THAT([&] { SyntheticDataset ds(o); },
              ::testing::ThrowsMessage<Error>(HasSubstr("num_classes 0 (expected >= 1)")));
  o = options();
  o.input_shape = {3, 0, 4};
  EXPECT_THAT([&] { SyntheticDataset ds(o); },
              ::testing::ThrowsMessage<Error>(HasSubstr("input shape [3, 0, 4]")));
  o = options();
  o.size = -1;
  EXPECT_THAT([&] { SyntheticDataset ds(o); },
              ::testing::ThrowsMessage<Error>(HasSubstr("size -1 is negative")));
  SyntheticDataset ds(options());
  EXPECT_THAT([&] { ds.get(600); },
              ::testing::ThrowsMessage<Error>(HasSubstr("index 600 is out of range [0, 600)")));
}

}  // namespace
}  // namespace ompq::data
