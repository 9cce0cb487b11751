// Search space and cost model against the reference's numbers (docs/METHOD.md): per-layer
// parameter and FLOP tables (2.3, reference counter of 2.8), totals, fp32 sizes, the feasible
// budget ranges (2.7), and the size/BOPs of the released QAT bit configurations (3.1, 6.1), all
// confirmed there by CALC.
#include "solver/space/search_space.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <numeric>
#include <vector>

#include "layers/models/fashion_cnn.h"
#include "layers/models/mobilenet_v2.h"
#include "layers/models/resnet.h"
#include "solver/space/cost_model.h"

namespace ompq::solver {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// Building a model draws its initial weights; each is built once for the whole file.
const nn::Model& resnet18() {
  static const auto model = nn::resnet18();
  return *model;
}
const nn::Model& resnet50() {
  static const auto model = nn::resnet50();
  return *model;
}
const nn::Model& mobilenet_v2() {
  static const auto model = std::make_shared<nn::MobileNetV2>();
  return *model;
}

SearchSpace space_of(const nn::Model& model, QuantMode mode) {
  absl::StatusOr<SearchSpace> space = build_search_space(model, mode, 224, 224);
  EXPECT_TRUE(space.ok()) << space.status();
  return *space;
}

std::vector<int64_t> params_of(const std::vector<SearchUnit>& units) {
  std::vector<int64_t> out;
  for (const SearchUnit& u : units) out.push_back(u.params);
  return out;
}
std::vector<int64_t> flops_of(const std::vector<SearchUnit>& units, bool reference) {
  std::vector<int64_t> out;
  for (const SearchUnit& u : units) out.push_back(reference ? u.reference_flops : u.flops);
  return out;
}
std::vector<std::string> names_of(const std::vector<SearchUnit>& units) {
  std::vector<std::string> out;
  for (const SearchUnit& u : units) out.push_back(u.name);
  return out;
}
int64_t total_params(const SearchSpace& s) {
  int64_t total = 0;
  for (const SearchUnit& u : s.units) total += u.params;
  for (const SearchUnit& u : s.fixed) total += u.params;
  return total;
}

// docs/METHOD.md 2.3, ResNet-18 PTQ order (stem, 16 searched layers, fc).
const std::vector<int64_t> kResNet18Params = {9536,   36992,   36992,   36992,   36992,   73984,
                                              156160, 147712,  147712,  295424,  623616,  590336,
                                              590336, 1180672, 2492416, 2360320, 2360320, 513000};
const std::vector<int64_t> kResNet18Flops = {122028032, 116609024, 116609024, 116609024, 116609024,
                                             58304512,  123031552, 116107264, 116107264, 58053632,
                                             122529792, 115856384, 115856384, 57928192,  122278912,
                                             115730944, 115730944, 1025000};
// docs/METHOD.md 2.3, ResNet-50 QAT (48 searched layers), FLOPs of the reference counter.
const std::vector<int64_t> kResNet50Params = {
    4224,    36992,   33792,   16512,   36992,   16896,   16512,   36992,  16896,  33024,
    147712,  198656,  65792,   147712,  66560,   65792,   147712,  66560,  65792,  147712,
    66560,   131584,  590336,  790528,  262656,  590336,  264192,  262656, 590336, 264192,
    262656,  590336,  264192,  262656,  590336,  264192,  262656,  590336, 264192, 525312,
    2360320, 3153920, 1049600, 2360320, 1052672, 1049600, 2360320, 1052672};
const std::vector<int64_t> kResNet50ReferenceFlops = {
    55394304,  116609024, 110788608, 52383744,  116609024, 55394304,  52383744,  116609024,
    55394304,  104767488, 116107264, 158154752, 51881984,  116107264, 53387264,  51881984,
    116107264, 53387264,  51881984,  116107264, 53387264,  103763968, 115856384, 156147712,
    51631104,  115856384, 52383744,  51631104,  115856384, 52383744,  51631104,  115856384,
    52383744,  51631104,  115856384, 52383744,  51631104,  115856384, 52383744,  103262208,
    115730944, 155144192, 51505664,  115730944, 51881984,  51505664,  115730944, 51881984};
// docs/METHOD.md 2.3, MobileNetV2 (53 layers, first and last included).
const std::vector<int64_t> kMobileNetV2Params = {
    928,    352,    544,   1728,   1056,   2352,  3744,   1584,   3504,   3744,   1584,
    4672,   6528,   2112,  6208,   6528,   2112,  6208,   6528,   2112,   12416,  25344,
    4224,   24704,  25344, 4224,   24704,  25344, 4224,   24704,  25344,  4224,   37056,
    56448,  6336,   55488, 56448,  6336,   55488, 56448,  6336,   92480,  155520, 10560,
    153920, 155520, 10560, 153920, 155520, 10560, 307840, 412160, 1281000};
const std::vector<int64_t> kMobileNetV2Flops = {
    10838016, 3612672, 6422528,  19267584, 2709504, 7225344,  10838016, 4064256, 10838016,
    10838016, 1016064, 3612672,  4816896,  1354752, 4816896,  4816896,  1354752, 4816896,
    4816896,  338688,  2408448,  4816896,  677376,  4816896,  4816896,  677376,  4816896,
    4816896,  677376,  4816896,  4816896,  677376,  7225344,  10838016, 1016064, 10838016,
    10838016, 1016064, 10838016, 10838016, 254016,  4515840,  7526400,  423360,  7526400,
    7526400,  423360,  7526400,  7526400,  423360,  15052800, 20070400, 2559000};

// Per-unit triples [conv1, conv2, conv3] of ResNet-50 (docs/METHOD.md 3.1) flattened in search
// order.
std::vector<int> resnet50_bits(const std::vector<std::vector<int>>& blocks) {
  std::vector<int> bits;
  for (const auto& b : blocks) bits.insert(bits.end(), b.begin(), b.end());
  return bits;
}
std::vector<std::vector<int>> all8(int blocks) {
  return std::vector<std::vector<int>>(blocks, {8, 8, 8});
}
std::vector<std::vector<int>> concat(std::vector<std::vector<std::vector<int>>> parts) {
  std::vector<std::vector<int>> out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(SearchSpace, ResNet18PtqMatchesTheReferenceTables) {
  const SearchSpace s = space_of(resnet18(), QuantMode::kPtq);
  EXPECT_THAT(params_of(s.units), ElementsAreArray(kResNet18Params));
  EXPECT_THAT(flops_of(s.units, false), ElementsAreArray(kResNet18Flops));
  EXPECT_THAT(flops_of(s.units, true), ElementsAreArray(kResNet18Flops));
  EXPECT_TRUE(s.fixed.empty());
  EXPECT_EQ(s.min_bits, 2);
  EXPECT_EQ(s.max_bits, 4);
  EXPECT_EQ(s.units.front().name, "conv1");
  EXPECT_EQ(s.units[6].name, "layer2.0.conv2");
  EXPECT_THAT(s.units[6].layers, ElementsAre("layer2.0.conv2", "layer2.0.downsample.0"));
  EXPECT_EQ(s.units.back().name, "fc");
}

TEST(SearchSpace, ResNet18QatKeepsStemAndClassifierAt8Bits) {
  const SearchSpace s = space_of(resnet18(), QuantMode::kQat);
  ASSERT_EQ(s.units.size(), 16u);
  EXPECT_THAT(params_of(s.units),
              ElementsAreArray(kResNet18Params.begin() + 1, kResNet18Params.end() - 1));
  EXPECT_THAT(names_of(s.fixed), ElementsAre("conv1", "fc"));
  EXPECT_EQ(s.fixed[0].params + s.fixed[1].params, 522536);   // first_last_size
  EXPECT_EQ(s.fixed[0].flops + s.fixed[1].flops, 123053032);  // first_last_flops
  EXPECT_EQ(s.min_bits, 4);
  EXPECT_EQ(s.max_bits, 8);
  EXPECT_EQ(total_params(s), 11689512);
  EXPECT_NEAR(fp32_size_mib(s), 44.5919, 5e-5);
}

TEST(SearchSpace, ResNet50ReferenceCounterAndItsBugs) {
  const SearchSpace s = space_of(resnet50(), QuantMode::kQat);
  ASSERT_EQ(s.units.size(), 48u);
  EXPECT_THAT(params_of(s.units), ElementsAreArray(kResNet50Params));
  EXPECT_THAT(flops_of(s.units, true), ElementsAreArray(kResNet50ReferenceFlops));
  EXPECT_EQ(s.fixed[0].params + s.fixed[1].params, 2058536);
  EXPECT_EQ(s.fixed[0].reference_flops + s.fixed[1].reference_flops, 123053032);
  // Fixed counting: layer1.0.conv1 at its real 56 x 56, the fc with its 2048 inputs.
  std::vector<int64_t> fixed = kResNet50ReferenceFlops;
  fixed[0] = (64 * 64 + 5 * 64) * 56 * 56;
  EXPECT_THAT(flops_of(s.units, false), ElementsAreArray(fixed));
  EXPECT_EQ(s.fixed[1].flops, (2 * 2048 + 1) * 1000);
  EXPECT_EQ(total_params(s), 25557032);
  EXPECT_NEAR(fp32_size_mib(s), 97.4923, 5e-5);
  const SearchSpace ptq = space_of(resnet50(), QuantMode::kPtq);
  EXPECT_EQ(ptq.units.size(), 50u);
  EXPECT_EQ(ptq.units.back().params, 2049000);
}

TEST(SearchSpace, MobileNetV2MatchesTheReferenceTables) {
  const SearchSpace s = space_of(mobilenet_v2(), QuantMode::kPtq);
  EXPECT_THAT(params_of(s.units), ElementsAreArray(kMobileNetV2Params));
  EXPECT_THAT(flops_of(s.units, false), ElementsAreArray(kMobileNetV2Flops));
  EXPECT_THAT(flops_of(s.units, true), ElementsAreArray(kMobileNetV2Flops));
  EXPECT_EQ(s.units[1].name, "features.1.conv.0.0");
  EXPECT_EQ(s.units[2].name, "features.1.conv.1");
  EXPECT_EQ(s.units[5].name, "features.2.conv.2");
  EXPECT_EQ(s.units[52].name, "classifier.1");
  EXPECT_EQ(total_params(s), 3504872);
  EXPECT_NEAR(fp32_size_mib(s), 13.3700, 5e-5);
  // QAT follows the same rule as the ResNets here (the reference ignores the mode).
  const SearchSpace qat = space_of(mobilenet_v2(), QuantMode::kQat);
  EXPECT_EQ(qat.units.size(), 51u);
  EXPECT_THAT(names_of(qat.fixed), ElementsAre("features.0.0", "classifier.1"));
}

TEST(SearchSpace, SmallResNetsCountTheirOwnGeometry) {
  Generator gen(1);
  auto r20 = nn::resnet20(10, gen);
  absl::StatusOr<SearchSpace> s = build_search_space(*r20, QuantMode::kPtq, 32, 32);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->units.size(), 20u);
  EXPECT_EQ(total_params(*s), 272474);
  // Stem 3x3 3->16 at 32 x 32 (no max-pool); layer2.0.conv2 at 16 x 16 with its 1x1 shortcut.
  EXPECT_EQ(s->units[0].flops, (3 * 9 * 16 + 5 * 16) * 32 * 32);
  EXPECT_EQ(s->units[8].name, "layer2.0.conv2");
  EXPECT_EQ(s->units[8].flops, (32 * 9 * 32 + 5 * 32 + 16 * 32 + 5 * 32) * 16 * 16);
  EXPECT_EQ(s->units[19].flops, (2 * 64 + 1) * 10);
  auto r34 = nn::resnet34(1000, false, gen);
  absl::StatusOr<SearchSpace> s34 = build_search_space(*r34, QuantMode::kQat, 224, 224);
  ASSERT_TRUE(s34.ok());
  EXPECT_EQ(s34->units.size(), 32u);
}

TEST(SearchSpace, RejectsOtherModelsAndBadSizes) {
  Generator gen(1);
  nn::FashionCnn cnn(10, gen);
  absl::StatusOr<SearchSpace> s = build_search_space(cnn, QuantMode::kQat, 28, 28);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("supports ResNets"));
  s = build_search_space(resnet18(), QuantMode::kQat, 0, 224);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("input size 0x224"));
}

TEST(CostModel, FeasibleRangesOfSpec27) {
  const Range r18_qat = size_range_mib(space_of(resnet18(), QuantMode::kQat));
  EXPECT_NEAR(r18_qat.min, 5.82, 5e-3);
  EXPECT_NEAR(r18_qat.max, 11.15, 5e-3);
  const Range r18_ptq = size_range_mib(space_of(resnet18(), QuantMode::kPtq));
  EXPECT_NEAR(r18_ptq.min, 2.786997, 5e-7);
  EXPECT_NEAR(r18_ptq.max, 5.573994, 5e-7);
  const Range r50_qat = size_range_mib(space_of(resnet50(), QuantMode::kQat));
  EXPECT_NEAR(r50_qat.min, 13.17, 5e-3);
  EXPECT_NEAR(r50_qat.max, 24.37, 5e-3);
  const Range mb = size_range_mib(space_of(mobilenet_v2(), QuantMode::kPtq));
  EXPECT_NEAR(mb.min, 0.835627, 5e-7);
  EXPECT_NEAR(mb.max, 1.671253, 5e-7);
}

TEST(CostModel, ReleasedResNet18QatConfig) {
  const SearchSpace s = space_of(resnet18(), QuantMode::kQat);
  const std::vector<int> bits = {8, 8, 8, 8, 7, 8, 8, 8, 8, 4, 6, 8, 4, 4, 4, 4};
  EXPECT_NEAR(model_size_mib(s, bits), 6.6986, 5e-5);
  EXPECT_NEAR(bops_g(s, bits, 6, false), 75.10, 5e-3);
  EXPECT_NEAR(bops_g(s, bits, 8, false), 97.51, 5e-3);
  // BasicBlock ResNets have no counter bugs.
  EXPECT_EQ(bops_g(s, bits, 8, true), bops_g(s, bits, 8, false));
  EXPECT_NEAR(bops_g(s, std::vector<int>(16, 8), 8, true), 116.93, 5e-3);
  EXPECT_NEAR(bops_g(s, std::vector<int>(16, 4), 4, true), 35.14, 5e-3);
}

TEST(CostModel, ReleasedResNet50QatConfigsWithTheReferenceCounter) {
  const SearchSpace s = space_of(resnet50(), QuantMode::kQat);
  const std::vector<int> size16 =
      resnet50_bits(concat({all8(7),
                            {{8, 4, 4}, {8, 4, 8}, {8, 4, 8}, {8, 5, 8}, {8, 8, 8}, {8, 4, 8}},
                            {{4, 4, 4}, {4, 4, 4}, {4, 4, 8}}}));
  const std::vector<int> size18 =
      resnet50_bits(concat({all8(7), {{8, 8, 4}}, all8(5), {{8, 4, 4}, {5, 4, 8}, {8, 4, 8}}}));
  const std::vector<int> size21 =
      resnet50_bits(concat({all8(13), {{8, 4, 4}, {8, 6, 8}, {8, 8, 8}}}));
  ASSERT_EQ(size16.size(), 48u);
  EXPECT_NEAR(model_size_mib(s, size16), 16.0252, 5e-5);
  EXPECT_NEAR(bops_g(s, size16, 5, true), 141.03, 5e-3);
  EXPECT_NEAR(model_size_mib(s, size18), 18.7404, 5e-5);
  EXPECT_NEAR(bops_g(s, size18, 5, true), 156.42, 5e-3);
  EXPECT_NEAR(model_size_mib(s, size21), 21.1809, 5e-5);
  EXPECT_NEAR(bops_g(s, size21, 7, true), 226.16, 5e-3);
  EXPECT_NEAR(bops_g(s, std::vector<int>(48, 8), 8, true), 267.86, 5e-3);
  EXPECT_NEAR(bops_g(s, std::vector<int>(48, 4), 4, true), 72.87, 5e-3);
  // docs/METHOD.md 2.8: fixing the conv1 bug lowers W8/A5 BOPs by about 1.66 G, fixing the fc
  // raises them by about 0.20 G.
  const std::vector<int> w8(48, 8);
  EXPECT_NEAR(bops_g(s, w8, 5, false) - bops_g(s, w8, 5, true),
              (-(55394304 - 13848576) * 8.0 * 5 + (4097000 - 1025000) * 64.0) / 1e9, 1e-9);
  EXPECT_NEAR(bops_g(s, w8, 5, true) - bops_g(s, w8, 5, false), 1.66 - 0.20, 0.01);
}

TEST(CostModel, RejectsAWrongNumberOfBits) {
  const SearchSpace s = space_of(resnet18(), QuantMode::kQat);
  EXPECT_THAT(
      [&] {
        model_size_mib(s, {8, 8});
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("2 bit-widths for 16 searched units")));
  EXPECT_THAT([&] { bops_g(s, std::vector<int>(16, 8), 0, false); },
              ::testing::ThrowsMessage<Error>(HasSubstr("activation bits 0")));
}

}  // namespace
}  // namespace ompq::solver
