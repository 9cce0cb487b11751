// The presets of configs/ (one ExperimentConfig per published row of the paper): each parses,
// passes the checks ompq_train makes before it writes anything (the config values, the model, a
// feasible budget for that model, as Experiment::prepare does), spells out the recipe it claims
// instead of leaning on ompq's CPU defaults, and searches at the size it reproduces.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/proto/ompq.pb.h"
#include "core/random.h"
#include "layers/models/registry.h"
#include "solver/config/config_enums.h"
#include "solver/config/proto_io.h"
#include "solver/pipeline/experiment.h"
#include "solver/search/bit_allocation.h"
#include "solver/search/search_enums.h"
#include "solver/space/search_space.h"

namespace ompq::solver {
namespace {

namespace fs = std::filesystem;

const fs::path& presets_dir() {
  static const fs::path dir = fs::path(OMPQ_SOURCE_DIR) / "configs";
  return dir;
}

std::vector<std::string> preset_files() {
  std::vector<std::string> files;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(presets_dir(), ec)) {
    if (entry.path().extension() == ".pbtxt") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The test name of a preset: its file name with every character gtest refuses made '_'.
std::string test_name(const std::string& path) {
  std::string name = fs::path(path).stem().string();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

TEST(Presets, TheFolderHoldsPresets) {
  EXPECT_FALSE(preset_files().empty()) << "no .pbtxt file in " << presets_dir();
}

class PresetTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const absl::Status read = read_text_proto(GetParam(), &config_);
    ASSERT_TRUE(read.ok()) << read;
  }
  proto::ExperimentConfig config_;
};

TEST_P(PresetTest, RunsOnImageNetFromGivenWeightsIntoItsOwnFolder) {
  EXPECT_EQ(config_.data().dataset(), proto::DATASET_IMAGENET);
  // The command line gives the data and the weights: a preset that named them would only work
  // on the machine it was written on.
  EXPECT_TRUE(config_.data().dir().empty()) << config_.data().dir();
  EXPECT_TRUE(config_.weights().empty()) << config_.weights();
  EXPECT_EQ(config_.output_dir(), "out/" + fs::path(GetParam()).stem().string());
}

TEST_P(PresetTest, PassesTheConfigChecksOfOmpqTrain) {
  // As run: `--weights` given (without it the config would need a pretraining recipe).
  proto::ExperimentConfig as_run = config_;
  as_run.set_weights("weights.safetensors");
  const absl::Status valid = validate_experiment_config(as_run);
  EXPECT_TRUE(valid.ok()) << valid;
}

TEST_P(PresetTest, SpellsOutTheReferenceRecipe) {
  // A zero field falls back to ompq's short CPU defaults (solver/quantize/ptq.h), so every recipe
  // field must be set.
  ASSERT_NE(config_.quant(), proto::QUANT_NONE);
  EXPECT_EQ(config_.search().images(), 32);
  EXPECT_NE(config_.search().rounding(), proto::ROUNDING_UNSPECIFIED);
  if (config_.quant() == proto::QUANT_QAT) {
    const proto::QatConfig& q = config_.qat();
    EXPECT_GT(q.epochs(), 0);
    EXPECT_GT(q.lr(), 0);
    EXPECT_GT(q.momentum(), 0);
    EXPECT_GT(q.weight_decay(), 0);
  } else {
    const proto::PtqConfig& p = config_.ptq();
    EXPECT_GT(p.iters(), 0);
    EXPECT_GT(p.calibration_images(), 0);
    EXPECT_GT(p.activation_iters(), 0);
    EXPECT_GT(p.weight_lr(), 0);
    EXPECT_GT(p.activation_lr(), 0);
    EXPECT_GT(p.rounding_weight(), 0);
    EXPECT_GT(p.activation_p(), 0);
  }
}

TEST_P(PresetTest, NamesThePublishedRowItReproduces) {
  const proto::PublishedResult& published = config_.published();
  EXPECT_FALSE(published.source().empty());
  EXPECT_GT(published.top1(), 0);
  EXPECT_LE(published.top1(), 100);
  EXPECT_GE(published.bops_g(), 0);
  EXPECT_EQ(published.act_bits(), config_.act_bits());
  // The paper's sizes are the budgets its searches ran at, to one decimal (MobileNetV2's 1.3 MB
  // row ran at most at 1.285).
  EXPECT_NEAR(config_.search().budget_mb(), published.size_mb(), 0.02 * published.size_mb());
}

TEST_P(PresetTest, HasAFeasibleBudgetForItsModel) {
  nn::ModelSpec spec;
  spec.name = config_.model();
  spec.num_classes = 1000;
  spec.small_input = config_.small_input();
  spec.width_mult = config_.width_mult() > 0 ? config_.width_mult() : 1.0;
  Generator gen(config_.seed());
  absl::StatusOr<std::shared_ptr<nn::Model>> model = nn::make_model(spec, gen);
  ASSERT_TRUE(model.ok()) << model.status();
  const QuantMode mode = quant_mode(config_.quant());
  absl::StatusOr<SearchSpace> space = build_search_space(**model, mode, 224, 224);
  ASSERT_TRUE(space.ok()) << space.status();

  AllocationOptions options;
  absl::StatusOr<SolverKind> solver = solver_kind(config_.search().solver());
  ASSERT_TRUE(solver.ok()) << solver.status();
  options.solver = *solver;
  options.rounding = rounding_kind(config_.search().rounding(), config_.model());
  options.budget_mib = config_.search().budget_mb();
  options.act_bits = config_.act_bits();
  const absl::Status feasible = check_allocation_options(*space, options);
  EXPECT_TRUE(feasible.ok()) << feasible;

  // The data-free solver runs here whole: its bits land at the published size (DFS never above
  // the budget; half-to-even, the reference's rounding for MobileNetV2, slightly either side).
  if (options.solver != SolverKind::kProjection) return;
  absl::StatusOr<BitAllocation> bits = allocate_bits(*space, {}, options);
  ASSERT_TRUE(bits.ok()) << bits.status();
  EXPECT_NEAR(bits->size_mib, config_.published().size_mb(), 0.02 * config_.published().size_mb());
  if (options.rounding == Rounding::kDfs) EXPECT_LE(bits->size_mib, options.budget_mib);
}

INSTANTIATE_TEST_SUITE_P(Configs, PresetTest, ::testing::ValuesIn(preset_files()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return test_name(info.param);
                         });
// An empty configs/ folder is TheFolderHoldsPresets' failure, not a second one here.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PresetTest);

}  // namespace
}  // namespace ompq::solver
