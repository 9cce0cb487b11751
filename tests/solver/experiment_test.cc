// The pieces of ompq_train's pipeline that need no training: the stage ledger, the bit config read
// back for quantization, and the config checks. The pipeline itself runs in e2e/train_smoke.sh.
#include "solver/pipeline/experiment.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "layers/models/registry.h"
#include "solver/config/proto_io.h"
#include "solver/pipeline/stages.h"
#include "solver/search/bit_config.h"
#include "tests/temp_dir.h"

namespace ompq::solver {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

void touch(const fs::path& file) { std::ofstream(file) << "x"; }

proto::StageRecord record(const std::string& name, const std::string& output) {
  proto::StageRecord r;
  r.set_name(name);
  r.set_status(proto::STAGE_STATUS_DONE);
  if (!output.empty()) r.add_outputs(output);
  return r;
}

TEST(StageLedger, RemembersFinishedStagesAcrossOpens) {
  testing::ScopedTempDir temp;
  const fs::path& dir = temp.path();
  {
    auto ledger = StageLedger::open(dir.string());
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    EXPECT_EQ(ledger->finished("pretrain"), nullptr);
    touch(dir / "fp32.safetensors");
    ASSERT_TRUE(ledger->finish(record("pretrain", "fp32.safetensors")).ok());
    touch(dir / "bits.pbtxt");
    proto::StageRecord search = record("search", "bits.pbtxt");
    search.set_seconds(1.5);
    ASSERT_TRUE(ledger->finish(search).ok());
  }
  auto reopened = StageLedger::open(dir.string());
  ASSERT_TRUE(reopened.ok());
  ASSERT_NE(reopened->finished("search"), nullptr);
  EXPECT_DOUBLE_EQ(reopened->finished("search")->seconds(), 1.5);
  EXPECT_NE(reopened->finished("pretrain"), nullptr);
  EXPECT_EQ(reopened->finished("qat"), nullptr);
}

TEST(StageLedger, AStageWithAMissingOutputIsNotFinished) {
  testing::ScopedTempDir temp;
  const fs::path& dir = temp.path();
  auto ledger = StageLedger::open(dir.string());
  touch(dir / "bits.pbtxt");
  ASSERT_TRUE(ledger->finish(record("search", "bits.pbtxt")).ok());
  ASSERT_NE(ledger->finished("search"), nullptr);
  fs::remove(dir / "bits.pbtxt");
  EXPECT_EQ(ledger->finished("search"), nullptr);
}

TEST(StageLedger, BeginningAStageForgetsItAndTheStagesAfterIt) {
  testing::ScopedTempDir temp;
  const fs::path& dir = temp.path();
  auto ledger = StageLedger::open(dir.string());
  for (const char* name : {"pretrain", "search", "qat", "eval"}) {
    ASSERT_TRUE(ledger->finish(record(name, "")).ok());
  }
  ASSERT_TRUE(ledger->begin("search").ok());
  EXPECT_NE(ledger->finished("pretrain"), nullptr);
  EXPECT_EQ(ledger->finished("search"), nullptr);
  EXPECT_EQ(ledger->finished("qat"), nullptr);
  EXPECT_EQ(ledger->finished("eval"), nullptr);
  // Written at once: a crash in the stage does not leave the later ones marked finished.
  auto reopened = StageLedger::open(dir.string());
  ASSERT_EQ(reopened->state().stage_size(), 1);
  EXPECT_EQ(reopened->state().stage(0).name(), "pretrain");
}

TEST(StageLedger, AReadOnlyLedgerWritesNothing) {
  testing::ScopedTempDir temp;
  const fs::path& dir = temp.path();
  auto ledger = StageLedger::open(dir.string(), /*writes=*/false);
  ASSERT_TRUE(ledger->finish(record("pretrain", "")).ok());
  EXPECT_NE(ledger->finished("pretrain"), nullptr);
  EXPECT_FALSE(fs::exists(ledger->path()));
}

TEST(StageLedger, ACorruptFileIsAnErrorNamingIt) {
  testing::ScopedTempDir temp;
  const fs::path& dir = temp.path();
  std::ofstream(dir / "stages.pbtxt") << "stage { name: 3 3 }";
  auto ledger = StageLedger::open(dir.string());
  ASSERT_FALSE(ledger.ok());
  EXPECT_THAT(std::string(ledger.status().message()), HasSubstr("stages.pbtxt"));
  EXPECT_THAT(std::string(ledger.status().message()), HasSubstr("line 1"));
}

// The bit config of resnet20 in QAT mode with every searched unit at `bits`.
proto::BitConfig resnet20_bits(const nn::Model& model, int bits) {
  auto space = build_search_space(model, QuantMode::kQat, 32, 32);
  EXPECT_TRUE(space.ok());
  proto::BitConfig config;
  config.set_model("resnet20");
  config.set_quant(proto::QUANT_QAT);
  auto add = [](proto::LayerBits* entry, const SearchUnit& unit, int b) {
    entry->set_name(unit.name);
    entry->set_bits(b);
    entry->set_params(unit.params);
    for (const std::string& layer : unit.layers) entry->add_layers(layer);
  };
  for (const SearchUnit& unit : space->units) add(config.add_layer(), unit, bits);
  for (const SearchUnit& unit : space->fixed) add(config.add_fixed(), unit, 8);
  return config;
}

std::shared_ptr<nn::Model> resnet20() {
  nn::ModelSpec spec;
  spec.name = "resnet20";
  spec.num_classes = 10;
  return *nn::make_model(spec);
}

TEST(BitConfigPlan, GivesEveryLayerItsBitsAndTheEdges) {
  auto model = resnet20();
  proto::BitConfig config = resnet20_bits(*model, 5);
  config.mutable_layer(0)->set_bits(4);
  auto plan = plan_from_bit_config(config, *model, "bits.pbtxt");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->mode, QuantMode::kQat);
  EXPECT_EQ(plan->weight_bits.at("conv1"), 8);
  EXPECT_EQ(plan->weight_bits.at("fc"), 8);
  EXPECT_EQ(plan->weight_bits.at(config.layer(0).name()), 4);
  // A projection shortcut takes the bits of its block's last conv.
  EXPECT_EQ(plan->weight_bits.at("layer2.0.downsample.0"), plan->weight_bits.at("layer2.0.conv2"));
  EXPECT_EQ(plan->edge_layers, (std::set<std::string>{"conv1", "fc"}));
  EXPECT_EQ(plan->unit_bits.size(), plan->space.units.size());
  EXPECT_EQ(plan->weight_bits.size(), model->quantizable_layers().size());
}

TEST(BitConfigPlan, RejectsConfigsOfAnotherModelOrOutOfRangeBits) {
  auto model = resnet20();
  auto error = [&](const proto::BitConfig& config) {
    auto plan = plan_from_bit_config(config, *model, "given.pbtxt");
    EXPECT_FALSE(plan.ok());
    return std::string(plan.status().message());
  };
  proto::BitConfig bits = resnet20_bits(*model, 6);
  bits.mutable_layer(3)->set_bits(3);
  EXPECT_THAT(error(bits), HasSubstr("given.pbtxt: layer 3"));
  EXPECT_THAT(error(bits), HasSubstr("has 3 bits (expected 4..8)"));

  bits = resnet20_bits(*model, 6);
  bits.mutable_layer()->RemoveLast();
  EXPECT_THAT(error(bits), HasSubstr("but the model has"));

  bits = resnet20_bits(*model, 6);
  bits.mutable_layer(1)->set_name("layer9.0.conv1");
  EXPECT_THAT(error(bits), HasSubstr("layer 1 is \"layer9.0.conv1\""));

  bits = resnet20_bits(*model, 6);
  bits.mutable_fixed(0)->set_bits(6);
  EXPECT_THAT(error(bits), HasSubstr("fixed 0"));

  bits = resnet20_bits(*model, 6);
  bits.set_quant(proto::QUANT_NONE);
  EXPECT_THAT(error(bits), HasSubstr("given.pbtxt: quant none (expected qat or ptq)"));
}

proto::ExperimentConfig valid_config() {
  proto::ExperimentConfig c;
  c.set_model("resnet20");
  c.set_output_dir("out");
  c.set_quant(proto::QUANT_QAT);
  c.set_act_bits(8);
  c.mutable_train()->set_epochs(1);
  c.mutable_train()->set_batch_size(8);
  c.mutable_train()->set_eval_batch_size(8);
  c.mutable_train()->set_lr(0.1);
  c.mutable_search()->set_budget_fraction(0.75);
  c.mutable_search()->set_solver(proto::SOLVER_LP);
  c.mutable_search()->set_beta(1);
  c.mutable_search()->set_images(8);
  c.mutable_qat()->set_epochs(1);
  c.mutable_qat()->set_lr(1e-3);
  c.mutable_ptq()->set_iters(10);
  c.mutable_ptq()->set_calibration_images(16);
  return c;
}

TEST(ExperimentConfig, AcceptsAValidConfigAndNamesTheBadField) {
  EXPECT_TRUE(validate_experiment_config(valid_config()).ok());
  auto message = [](const std::function<void(proto::ExperimentConfig&)>& change) {
    proto::ExperimentConfig c = valid_config();
    change(c);
    return std::string(validate_experiment_config(c).message());
  };
  // Text format takes any number for an enum; the check names the field and the known values.
  EXPECT_THAT(message([](auto& c) { c.set_quant(static_cast<proto::Quant>(7)); }),
              HasSubstr("config: quant is 7 (expected QUANT_QAT, QUANT_PTQ, QUANT_NONE)"));
  EXPECT_THAT(
      message([](auto& c) { c.mutable_search()->set_rounding(static_cast<proto::Rounding>(-1)); }),
      HasSubstr("config: search.rounding is -1 (expected ROUNDING_UNSPECIFIED"));
  EXPECT_THAT(message([](auto& c) { c.mutable_search()->set_solver(proto::SOLVER_RANDOM); }),
              HasSubstr("solver random (expected lp, ilp or projection; the baselines are bit "
                        "configs of ompq_search --allocation)"));
  EXPECT_THAT(message([](auto& c) { c.set_act_bits(1); }), HasSubstr("act_bits 1"));
  EXPECT_THAT(message([](auto& c) { c.mutable_qat()->set_epochs(0); }),
              HasSubstr("qat_epochs must be positive"));
  // Both zero: the mode's default fraction (0.75 QAT, 0.375 PTQ); negative is an error.
  EXPECT_EQ(message([](auto& c) {
              c.mutable_search()->set_budget_mb(0);
              c.mutable_search()->set_budget_fraction(0);
            }),
            "");
  EXPECT_THAT(message([](auto& c) { c.mutable_search()->set_budget_fraction(-0.5); }),
              HasSubstr("budget_fraction -0.5 (expected >= 0)"));
  EXPECT_THAT(message([](auto& c) { c.mutable_search()->set_images(1); }),
              HasSubstr("search_images 1"));
  EXPECT_THAT(message([](auto& c) { c.mutable_train()->set_epochs(0); }),
              HasSubstr("epochs must be positive"));
  EXPECT_THAT(message([](auto& c) {
                c.set_quant(proto::QUANT_PTQ);
                c.mutable_ptq()->set_iters(0);
              }),
              HasSubstr("ptq_iters must be positive"));
  // Given weights need no pretraining schedule; a given bit config needs no budget.
  EXPECT_TRUE(validate_experiment_config([] {
                auto c = valid_config();
                c.set_weights("w.safetensors");
                c.mutable_train()->set_epochs(0);
                c.mutable_search()->set_bits("bits.pbtxt");
                c.mutable_search()->set_budget_fraction(0);
                return c;
              }())
                  .ok());
}

}  // namespace
}  // namespace ompq::solver
