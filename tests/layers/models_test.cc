// Models: torchvision's parameter and buffer names, shapes and order, parameter counts, the
// conv/linear layers in the order a forward pass runs them (tests/data/parity/layouts.txt, recorded
// from torchvision by scripts/make_parity_golden.py), input shapes, forward shapes, and the model
// registry's errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/models/mobilenet_v2.h"
#include "layers/models/registry.h"
#include "layers/models/resnet.h"
#include "layers/models/vgg.h"

namespace ompq::nn {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// One architecture of layouts.txt: its spec and torchvision's entries as "name shape" lines.
struct Layout {
  ModelSpec spec;
  std::vector<std::string> params, buffers, layers;
};

std::string entry(const std::string& name, const Shape& shape) {
  std::string dims;
  for (int64_t d : shape) dims += (dims.empty() ? "" : ",") + std::to_string(d);
  return name + " " + (dims.empty() ? "scalar" : dims);
}

std::vector<Layout> read_layouts() {
  std::ifstream in(std::string(OMPQ_SOURCE_DIR) + "/tests/data/parity/layouts.txt");
  EXPECT_TRUE(in.good()) << "cannot read layouts.txt";
  std::vector<Layout> layouts;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> words = absl::StrSplit(line, ' ');
    if (words[0] == "model") {
      Layout layout;
      layout.spec.name = words[1];
      for (size_t i = 2; i < words.size(); ++i) {
        std::pair<std::string, std::string> kv = absl::StrSplit(words[i], '=');
        if (kv.first == "num_classes")
          EXPECT_TRUE(absl::SimpleAtoi(kv.second, &layout.spec.num_classes));
        if (kv.first == "small_input") layout.spec.small_input = kv.second == "1";
        if (kv.first == "width_mult")
          EXPECT_TRUE(absl::SimpleAtod(kv.second, &layout.spec.width_mult));
      }
      layouts.push_back(layout);
      continue;
    }
    EXPECT_EQ(words.size(), 3u) << line;
    std::string rest = words[1] + " " + words[2];
    if (words[0] == "param") layouts.back().params.push_back(rest);
    if (words[0] == "buffer") layouts.back().buffers.push_back(rest);
    if (words[0] == "layer") layouts.back().layers.push_back(rest);
  }
  return layouts;
}

int64_t parameter_count(const Module& model) {
  int64_t n = 0;
  for (const Tensor& p : model.parameters()) n += p.numel();
  return n;
}

TEST(ModelsTest, NamesShapesLayerOrderAndCountsMatchTorchvision) {
  // torchvision's published parameter counts (1000 classes) and resnet20's with 10.
  const std::map<std::string, int64_t> counts = {{"resnet18", 11689512},    {"resnet34", 21797672},
                                                 {"resnet50", 25557032},    {"resnet101", 44549160},
                                                 {"mobilenet_v2", 3504872}, {"vgg16_bn", 138365992},
                                                 {"resnet20", 272474}};
  std::vector<Layout> layouts = read_layouts();
  ASSERT_EQ(layouts.size(), 11u);
  int counted = 0;
  for (const Layout& layout : layouts) {
    SCOPED_TRACE(layout.spec.name + (layout.spec.small_input ? " small_input" : "") +
                 " width_mult " + std::to_string(layout.spec.width_mult));
    auto model = make_model(layout.spec);
    ASSERT_TRUE(model.ok()) << model.status();
    std::vector<std::string> params, buffers, layers;
    for (const auto& [name, t] : (*model)->named_parameters())
      params.push_back(entry(name, t.shape()));
    for (const auto& [name, t] : (*model)->named_buffers())
      buffers.push_back(entry(name, t.shape()));
    for (const QuantizableLayer& layer : (*model)->quantizable_layers()) {
      layers.push_back(entry(layer.name, layer.weight_shape));
    }
    EXPECT_EQ(params, layout.params);
    EXPECT_EQ(buffers, layout.buffers);
    EXPECT_EQ(layers, layout.layers);
    auto count = counts.find(layout.spec.name);
    if (count != counts.end() && !layout.spec.small_input && layout.spec.width_mult == 1.0) {
      EXPECT_EQ(parameter_count(**model), count->second);
      ++counted;
    }
  }
  EXPECT_EQ(counted, 7);
}

TEST(ModelsTest, QuantizableLayersOfResNet18RunStemBlocksShortcutsClassifier) {
  auto model = resnet18(10);
  std::vector<QuantizableLayer> layers = model->quantizable_layers();
  ASSERT_EQ(layers.size(), 21u);  // stem + 16 block convs + 3 projection shortcuts + fc
  EXPECT_EQ(layers[0].name, "conv1");
  EXPECT_EQ(layers[0].weight_shape, (Shape{64, 3, 7, 7}));
  EXPECT_EQ(layers[6].name, "layer2.0.conv2");
  EXPECT_EQ(layers[7].name, "layer2.0.downsample.0");
  EXPECT_EQ(layers[7].weight_shape, (Shape{128, 64, 1, 1}));
  EXPECT_EQ(layers[8].name, "layer2.1.conv1");
  EXPECT_EQ(layers[20].name, "fc");
  EXPECT_EQ(layers[20].kind, QuantizableLayer::Kind::kLinear);
  EXPECT_EQ(layers[20].weight_shape, (Shape{10, 512}));
  // The entries point at the model's own layers.
  auto fc = std::dynamic_pointer_cast<Linear>(layers[20].module);
  ASSERT_NE(fc, nullptr);
  EXPECT_TRUE(fc->bias().same(model->named_parameters().back().second));  // "fc.bias"
  for (size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(layers[i].kind, QuantizableLayer::Kind::kConv2d) << layers[i].name;
    EXPECT_NE(std::dynamic_pointer_cast<Conv2d>(layers[i].module), nullptr) << layers[i].name;
  }
}

TEST(ModelsTest, MobileNetV2Has53QuantizableLayersWithDepthwiseConvs) {
  MobileNetV2 model;
  std::vector<QuantizableLayer> layers = model.quantizable_layers();
  ASSERT_EQ(layers.size(), 53u);  // as the OMPQ reference's feature list
  EXPECT_EQ(layers[0].name, "features.0.0");
  EXPECT_EQ(layers[1].name, "features.1.conv.0.0");
  EXPECT_EQ(layers[1].weight_shape, (Shape{32, 1, 3, 3}));  // depthwise
  EXPECT_EQ(layers[2].name, "features.1.conv.1");
  EXPECT_EQ(layers[51].name, "features.18.0");
  EXPECT_EQ(layers[52].name, "classifier.1");
}

TEST(ModelsTest, QuantizableLayersOfResNet101RunStemBlocksShortcutsClassifier) {
  auto model = resnet101(10);
  std::vector<QuantizableLayer> layers = model->quantizable_layers();
  ASSERT_EQ(layers.size(), 105u);  // stem + 33 blocks x 3 convs + 4 projection shortcuts + fc
  EXPECT_EQ(layers[0].name, "conv1");
  EXPECT_EQ(layers[3].name, "layer1.0.conv3");
  EXPECT_EQ(layers[4].name, "layer1.0.downsample.0");
  EXPECT_EQ(layers[4].weight_shape, (Shape{256, 64, 1, 1}));
  // layer3 holds 23 blocks: its first comes after the stem, 3 + 4 blocks and 2 shortcuts.
  EXPECT_EQ(layers[1 + 7 * 3 + 2].name, "layer3.0.conv1");
  EXPECT_EQ(layers[1 + 29 * 3 + 3 + 2].name, "layer3.22.conv3");
  EXPECT_EQ(layers[1 + 30 * 3 + 3 + 3].name, "layer4.0.downsample.0");
  EXPECT_EQ(layers[104].name, "fc");
  EXPECT_EQ(layers[104].weight_shape, (Shape{10, 2048}));
}

TEST(ModelsTest, QuantizableLayersOfVgg16BnAreThirteenConvsAndThreeLinears) {
  auto model = vgg16_bn(10, true);
  std::vector<std::string> names;
  for (const QuantizableLayer& layer : model->quantizable_layers()) {
    EXPECT_EQ(layer.kind,
              names.size() < 13 ? QuantizableLayer::Kind::kConv2d : QuantizableLayer::Kind::kLinear)
        << layer.name;
    names.push_back(layer.name);
  }
  // features: conv, BN, ReLU per conv and a max-pool after each stage; classifier: Linear, ReLU,
  // Dropout, Linear, ReLU, Dropout, Linear.
  EXPECT_THAT(names, ElementsAre("features.0", "features.3", "features.7", "features.10",
                                 "features.14", "features.17", "features.20", "features.24",
                                 "features.27", "features.30", "features.34", "features.37",
                                 "features.40", "classifier.0", "classifier.3", "classifier.6"));
  const std::vector<QuantizableLayer> layers = model->quantizable_layers();
  EXPECT_EQ(layers[0].weight_shape, (Shape{64, 3, 3, 3}));
  EXPECT_EQ(layers[13].weight_shape, (Shape{4096, 512 * 7 * 7}));
  EXPECT_EQ(layers[15].weight_shape, (Shape{10, 4096}));
}

TEST(ModelsTest, MakeDivisibleRoundsAsTorchvision) {
  // Expected values from torchvision.models._utils._make_divisible(v, 8).
  EXPECT_EQ(make_divisible(32 * 1.0, 8), 32);
  EXPECT_EQ(make_divisible(32 * 0.35, 8), 16);  // 8 would lose more than 10%
  EXPECT_EQ(make_divisible(24 * 0.5, 8), 16);   // 12 rounds half up
  EXPECT_EQ(make_divisible(16 * 0.5, 8), 8);
  EXPECT_EQ(make_divisible(1280 * 1.4, 8), 1792);
  EXPECT_EQ(make_divisible(3.0, 8), 8);
}

TEST(ModelsTest, InputShapesAndForwardShapes) {
  Generator gen(3);
  auto check = [&](const ModelSpec& spec, const Shape& input, int64_t size) {
    SCOPED_TRACE(spec.name);
    auto model = make_model(spec, gen);
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ((*model)->input_shape(), input);
    (*model)->eval();
    Tensor logits = (*model)->forward(Tensor::zeros({1, input[0], size, size}));
    EXPECT_EQ(logits.shape(), (Shape{1, spec.num_classes}));
  };
  check({"resnet18", 7, true}, {3, 32, 32}, 28);
  check({"resnet20", 10}, {3, 32, 32}, 32);
  check({"mobilenet_v2", 5, true, 0.5}, {3, 32, 32}, 32);
  check({"fashion_cnn", 10}, {1, 28, 28}, 28);
  check({"resnet101", 4, true}, {3, 32, 32}, 32);
  // Five 2x2 max-pools bring 32 px to 1x1, which the adaptive pool replicates to 7x7.
  check({"vgg16_bn", 6, true}, {3, 32, 32}, 32);
  // The ImageNet designs take any size that survives their 32x downsampling.
  check({"mobilenet_v2", 3, false, 0.25}, {3, 224, 224}, 40);
}

TEST(ModelsTest, SmallInputKeepsResolutionInTheStem) {
  // The stem conv of the small variant is 3x3 with stride 1, and no max-pool follows.
  auto small = resnet18(10, true);
  EXPECT_EQ(small->quantizable_layers()[0].weight_shape, (Shape{64, 3, 3, 3}));
  auto stem = std::dynamic_pointer_cast<Conv2d>(small->quantizable_layers()[0].module);
  ASSERT_NE(stem, nullptr);
  EXPECT_EQ(stem->params().stride, (std::array<int64_t, 2>{1, 1}));
  // MobileNetV2's small variant also runs the first block of the 24-channel stage at stride 1.
  MobileNetV2Options options;
  options.small_input = true;
  MobileNetV2 mobilenet(options);
  for (const QuantizableLayer& layer : mobilenet.quantizable_layers()) {
    if (layer.name == "features.0.0" || layer.name == "features.2.conv.1.0") {
      EXPECT_EQ(std::dynamic_pointer_cast<Conv2d>(layer.module)->params().stride,
                (std::array<int64_t, 2>{1, 1}))
          << layer.name;
    }
    if (layer.name == "features.4.conv.1.0") {
      EXPECT_EQ(std::dynamic_pointer_cast<Conv2d>(layer.module)->params().stride,
                (std::array<int64_t, 2>{2, 2}));
    }
  }
}

TEST(ModelsTest, RegistryListsTheCommandLineNames) {
  EXPECT_THAT(model_names(), ElementsAre("resnet18", "resnet34", "resnet50", "resnet101",
                                         "mobilenet_v2", "vgg16_bn", "resnet20", "fashion_cnn"));
}

TEST(ModelsTest, RegistryRejectsUnknownNamesAndOptionsAModelLacks) {
  auto unknown = make_model({"resnet9000", 10});
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(std::string(unknown.status().message()),
              HasSubstr("unknown model \"resnet9000\" (known: resnet18, resnet34"));
  auto width = make_model({"resnet18", 10, false, 0.5});
  ASSERT_FALSE(width.ok());
  EXPECT_THAT(std::string(width.status().message()),
              HasSubstr("width_mult 0.5 given for resnet18, which has no width multiplier"));
  auto classes = make_model({"resnet20", 0});
  ASSERT_FALSE(classes.ok());
  EXPECT_THAT(std::string(classes.status().message()),
              HasSubstr("num_classes must be positive, got 0"));
  auto zero_width = make_model({"mobilenet_v2", 10, false, 0.0});
  ASSERT_FALSE(zero_width.ok());
  EXPECT_THAT(std::string(zero_width.status().message()), HasSubstr("width_mult must be positive"));
}

TEST(ModelsTest, WrongInputChannelsNameTheConvAndShape) {
  auto model = resnet20(10);
  EXPECT_THAT(
      [&] {
        model->forward(Tensor::zeros({2, 1, 32, 32}));
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("conv2d: input of shape [2, 1, 32, 32]")));
}

TEST(ModelsTest, WeightsOfAnotherModelFailToLoadWithTheStrictMessage) {
  auto resnet = resnet20(10);
  auto other = resnet18(10, true);
  absl::Status status = other->load_state_dict(resnet->state_dict());
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("missing: "));
  EXPECT_THAT(std::string(status.message()), HasSubstr("layer4.0.conv1.weight"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("mismatched: "));
}

}  // namespace
}  // namespace ompq::nn
