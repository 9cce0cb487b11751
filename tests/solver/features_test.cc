// Feature capture: the units and order of docs/METHOD.md 1.3 for every supported model and both
// modes (matching the search space), BN in training mode (the PTQ logits equal a training-mode
// forward without dropout), and a model that comes back unchanged, also after an error.
#include "solver/capture/features.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/random.h"
#include "layers/models/fashion_cnn.h"
#include "layers/models/mobilenet_v2.h"
#include "layers/models/resnet.h"

namespace ompq::solver {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

struct Captured {
  std::vector<std::string> names;
  std::vector<Tensor> features;
};

Captured capture(nn::Model& model, const Tensor& images, QuantMode mode) {
  Captured c;
  capture_features(model, images, mode, [&](const std::string& unit, const Tensor& f) {
    c.names.push_back(unit);
    c.features.push_back(f);
  });
  return c;
}

std::vector<std::string> unit_names(const nn::Model& model, QuantMode mode, int64_t size) {
  std::vector<std::string> names;
  const absl::StatusOr<SearchSpace> space = build_search_space(model, mode, size, size);
  for (const SearchUnit& u : space->units) {
    names.push_back(u.name);
  }
  return names;
}

Tensor random_images(int64_t n, int64_t size, uint64_t seed) {
  Generator gen(seed);
  Tensor x = Tensor::empty({n, 3, size, size});
  ops::normal_(x, 0.0, 1.0, gen);
  return x;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  double m = 0.0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(double(x[i]) - y[i]));
  return m;
}

struct ModelCase {
  const char* name;
  std::function<std::shared_ptr<nn::Model>(Generator&)> make;  // a 32 px variant, 10 classes
  size_t qat_units, ptq_units;
};

// Names the case in test listings (gtest would otherwise print the struct's bytes).
void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }

class FeaturesOf : public ::testing::TestWithParam<ModelCase> {};

TEST_P(FeaturesOf, UnitsOfBothModesMatchTheSearchSpace) {
  Generator gen(1);
  const std::shared_ptr<nn::Model> model = GetParam().make(gen);
  const Tensor images = random_images(2, 32, 3);
  for (QuantMode mode : {QuantMode::kQat, QuantMode::kPtq}) {
    const Captured got = capture(*model, images, mode);
    EXPECT_EQ(got.names.size(),
              mode == QuantMode::kQat ? GetParam().qat_units : GetParam().ptq_units);
    EXPECT_THAT(got.names, ElementsAreArray(unit_names(*model, mode, 32)));
    for (const Tensor& f : got.features) EXPECT_EQ(f.size(0), 2);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, FeaturesOf,
    ::testing::Values(
        ModelCase{"resnet18", [](Generator& g) { return nn::resnet18(10, true, g); }, 16, 18},
        ModelCase{"resnet34", [](Generator& g) { return nn::resnet34(10, true, g); }, 32, 34},
        ModelCase{"resnet50", [](Generator& g) { return nn::resnet50(10, true, g); }, 48, 50},
        ModelCase{"resnet20", [](Generator& g) { return nn::resnet20(10, g); }, 18, 20},
        ModelCase{"mobilenet_v2",
                  [](Generator& g) {
                    nn::MobileNetV2Options o;
                    o.num_classes = 10;
                    o.small_input = true;
                    return std::make_shared<nn::MobileNetV2>(o, g);
                  },
                  51, 53}),
    [](const ::testing::TestParamInfo<ModelCase>& info) { return std::string(info.param.name); });

TEST(Features, ResNetFeaturesAreTheSpecsTensors) {
  Generator gen(2);
  auto model = nn::resnet18(10, /*small_input=*/false, gen);
  const Tensor images = random_images(3, 64, 4);
  const Captured ptq = capture(*model, images, QuantMode::kPtq);
  // Stem before the max-pool (64 -> 32), layer1 after it (16), logits last.
  EXPECT_EQ(ptq.features[0].shape(), (Shape{3, 64, 32, 32}));
  EXPECT_EQ(ptq.features[1].shape(), (Shape{3, 64, 16, 16}));
  EXPECT_EQ(ptq.features[4].shape(), (Shape{3, 64, 16, 16}));
  EXPECT_EQ(ptq.features[17].shape(), (Shape{3, 10}));
  for (size_t i = 0; i + 1 < ptq.features.size(); ++i) {  // post-ReLU
    const std::vector<float> v = ptq.features[i].to_vector<float>();
    EXPECT_GE(*std::min_element(v.begin(), v.end()), 0.0f) << ptq.names[i];
  }
  // The logits are those of a training-mode forward (BN with batch statistics).
  Tensor train_logits, eval_logits;
  {
    NoGradGuard no_grad;
    model->train();
    train_logits = model->forward(images);
    model->eval();
    eval_logits = model->forward(images);
  }
  EXPECT_LT(max_abs_diff(ptq.features[17], train_logits), 1e-5);
  EXPECT_GT(max_abs_diff(ptq.features[17], eval_logits), 1e-2);
}

TEST(Features, MobileNetV2LogitsAreATrainingModeForwardWithoutDropout) {
  Generator gen(3);
  nn::MobileNetV2Options options;
  options.num_classes = 10;
  options.small_input = true;
  options.dropout = 0.0;  // the reference's classifier has none; capture turns ours off
  auto model = std::make_shared<nn::MobileNetV2>(options, gen);
  const Tensor images = random_images(4, 32, 5);
  const Captured ptq = capture(*model, images, QuantMode::kPtq);
  EXPECT_EQ(ptq.names[1], "features.1.conv.0.0");
  EXPECT_EQ(ptq.names[2], "features.1.conv.1");
  EXPECT_EQ(ptq.features[3].size(1), 96);  // features.2 expand
  Tensor train_logits;
  {
    NoGradGuard no_grad;
    model->train();
    train_logits = model->forward(images);
  }
  EXPECT_LT(max_abs_diff(ptq.features.back(), train_logits), 1e-5);
  // With dropout in the model, capture still gives the same logits.
  options.dropout = 0.5;
  Generator same(3);
  auto with_dropout = std::make_shared<nn::MobileNetV2>(options, same);
  EXPECT_LT(
      max_abs_diff(capture(*with_dropout, images, QuantMode::kPtq).features.back(), train_logits),
      1e-5);
}

TEST(Features, TheModelComesBackUnchangedAlsoAfterAnError) {
  Generator gen(4);
  auto model = nn::resnet20(10, gen);
  model->eval();
  model->named_modules()[1].second->train(true);  // a mixed state must survive as it is
  std::vector<std::pair<std::string, bool>> flags;
  for (const auto& [name, m] : model->named_modules()) flags.emplace_back(name, m->is_training());
  std::vector<std::vector<float>> buffers;
  for (const auto& [name, b] : model->named_buffers()) buffers.push_back(b.to_vector<float>());
  auto check_unchanged = [&] {
    EXPECT_FALSE(model->is_training());
    size_t i = 0;
    for (const auto& [name, m] : model->named_modules()) {
      EXPECT_EQ(m->is_training(), flags[i++].second) << name;
    }
    i = 0;
    for (const auto& [name, b] : model->named_buffers()) {
      EXPECT_EQ(b.to_vector<float>(), buffers[i++]) << name;
    }
  };
  const Tensor images = random_images(4, 32, 6);
  capture(*model, images, QuantMode::kQat);
  check_unchanged();
  EXPECT_THROW(capture_features(*model, images, QuantMode::kQat,
                                [](const std::string&, const Tensor&) { throw Error("stop"); }),
               Error);
  check_unchanged();
}

TEST(Features, BadInputs) {
  Generator gen(5);
  auto model = nn::resnet20(10, gen);
  const auto ignore = [](const std::string&, const Tensor&) {};
  EXPECT_THAT([&] { capture_features(*model, random_images(1, 32, 1), QuantMode::kQat, ignore); },
              ::testing::ThrowsMessage<Error>(HasSubstr("with N >= 2, got shape [1, 3, 32, 32]")));
  EXPECT_THAT(
      [&] {
        capture_features(*model, Tensor::zeros({2, 3, 32}), QuantMode::kQat, ignore);
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("expected images [N, C, H, W]")));
  nn::FashionCnn cnn(10, gen);
  EXPECT_THAT([&] { capture_features(cnn, random_images(2, 28, 1), QuantMode::kQat, ignore); },
              ::testing::ThrowsMessage<Error>(HasSubstr("supports ResNets and mobilenet_v2")));
}

}  // namespace
}  // namespace ompq::solver
