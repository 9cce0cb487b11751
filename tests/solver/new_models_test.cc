// Models that the solver has never heard of (resnet101 and vgg16_bn came after the passes were
// written): the search space, feature capture and PTQ's reconstruction units follow from their
// traced graphs alone.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "layers/models/resnet.h"
#include "layers/models/vgg.h"
#include "layers/quant/quantize_model.h"
#include "solver/capture/features.h"
#include "solver/quantize/blocks.h"
#include "solver/quantize/ptq.h"
#include "solver/space/search_space.h"

namespace ompq::solver {
namespace {

using ::testing::ElementsAreArray;

std::vector<std::string> names_of(const std::vector<SearchUnit>& units) {
  std::vector<std::string> out;
  for (const SearchUnit& u : units) out.push_back(u.name);
  return out;
}

TEST(NewModels, Vgg16BnSearchSpaceFeaturesAndUnits) {
  Generator gen(1);
  auto vgg = nn::vgg16_bn(10, /*small_input=*/true, gen);
  absl::StatusOr<SearchSpace> space = build_search_space(*vgg, QuantMode::kPtq, 32, 32);
  ASSERT_TRUE(space.ok()) << space.status();
  ASSERT_EQ(space->units.size(), 16u);  // 13 convs, 3 linear layers; no shortcut to merge
  const SearchUnit& first = space->units[0];
  EXPECT_EQ(first.name, "features.0");
  // Weights, bias and the batch norm's gamma and beta; weights-only FLOPs at 32 x 32.
  EXPECT_EQ(first.params, 3 * 9 * 64 + 64 + 2 * 64);
  EXPECT_EQ(first.flops, 3 * 9 * 64 * 32 * 32);
  EXPECT_EQ(space->units[2].flops, 64 * 9 * 128 * 16 * 16);  // after the first max-pool
  const SearchUnit& fc6 = space->units[13];
  EXPECT_EQ(fc6.name, "classifier.0");
  EXPECT_EQ(fc6.params, (512 * 7 * 7 + 1) * 4096);
  EXPECT_EQ(fc6.flops, (2 * 512 * 7 * 7 - 1) * 4096);
  EXPECT_EQ(space->units.back().name, "classifier.6");
  int64_t total = 0;
  for (const SearchUnit& u : space->units) {
    total += u.params;
    EXPECT_EQ(u.reference_flops, u.flops) << u.name;
  }
  // Every parameter of the model: torchvision's 138,365,992 with a 10-class head.
  EXPECT_EQ(total, 138365992 - (4096 + 1) * 1000 + (4096 + 1) * 10);

  const Tensor images = randn({2, 3, 32, 32}, gen);
  std::vector<std::string> captured;
  capture_features(*vgg, images, QuantMode::kPtq,
                   [&](const std::string& unit, const Tensor&) { captured.push_back(unit); });
  EXPECT_THAT(captured, ElementsAreArray(names_of(space->units)));

  std::map<std::string, int> bits;
  for (const nn::QuantizableLayer& l : vgg->quantizable_layers()) bits[l.name] = 4;
  const nn::QuantizedLayers layers = nn::quantize_model(*vgg, bits, ptq_quantize_options(*vgg, 8));
  std::vector<std::string> units;
  for (const ReconstructionUnit& u : reconstruction_units(*vgg, layers)) units.push_back(u.name);
  EXPECT_THAT(units, ElementsAreArray(names_of(space->units)));  // no blocks: layer by layer
}

TEST(NewModels, ResNet101MergesShortcutsAndCarriesTheCounterBugs) {
  Generator gen(2);
  auto r101 = nn::resnet101(10, /*small_input=*/true, gen);
  absl::StatusOr<SearchSpace> space = build_search_space(*r101, QuantMode::kQat, 32, 32);
  ASSERT_TRUE(space.ok()) << space.status();
  EXPECT_EQ(space->units.size(), 99u);  // 33 Bottlenecks x 3; stem and fc fixed
  const SearchUnit& conv1 = space->units[0];
  EXPECT_EQ(conv1.name, "layer1.0.conv1");
  const int64_t per_pixel = 64 * 64 + 5 * 64;
  EXPECT_EQ(conv1.flops, per_pixel * 32 * 32);
  EXPECT_EQ(conv1.reference_flops, per_pixel * 64 * 64);  // the counter's doubled resolution
  EXPECT_EQ(space->units[2].layers,
            (std::vector<std::string>{"layer1.0.conv3", "layer1.0.downsample.0"}));
  EXPECT_EQ(space->fixed[1].flops, (2 * 2048 + 1) * 10);
  EXPECT_EQ(space->fixed[1].reference_flops, (2 * 512 + 1) * 10);

  std::map<std::string, int> bits;
  for (const nn::QuantizableLayer& l : r101->quantizable_layers()) bits[l.name] = 4;
  const nn::QuantizedLayers layers =
      nn::quantize_model(*r101, bits, ptq_quantize_options(*r101, 8));
  const std::vector<ReconstructionUnit> units = reconstruction_units(*r101, layers);
  ASSERT_EQ(units.size(), 1u + 33u + 1u);
  EXPECT_EQ(units[1].name, "layer1.0");
  EXPECT_EQ(units[1].layers.size(), 4u);
}

}  // namespace
}  // namespace ompq::solver
