// quantize_point: a ResNet-20 quantized for a 3-bit PTQ plan and evaluated, as the sweep and the
// correlation experiment run each point; its result against the same steps taken one by one, the
// refusal of a QAT plan, and the PTQ options an experiment config gives.
#include "solver/pipeline/quantize_point.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>

#include "core/autograd.h"
#include "core/random.h"
#include "data/synthetic.h"
#include "layers/models/resnet.h"
#include "solver/search/bit_config.h"
#include "solver/search/search.h"
#include "solver/space/cost_model.h"

namespace ompq::solver {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kTestImages = 24;

std::shared_ptr<nn::Model> fp32_resnet20() {
  Generator gen(7);
  return nn::resnet20(10, gen);
}

// The data-free projection allocation of `mode` at `fraction` of the all-8-bit size, as a plan.
LayerBitsPlan plan_for(nn::Model& model, QuantMode mode, double fraction) {
  SearchOptions options;
  options.model_name = "resnet20";
  options.mode = mode;
  options.allocation.solver = SolverKind::kProjection;
  options.allocation.rounding = Rounding::kDfs;
  SearchSpace space = build_search_space(model, mode, 32, 32).value();
  options.allocation.budget_mib =
      fraction * model_size_mib(space, std::vector<int>(space.units.size(), 8));
  SearchResult result = search(model, Tensor(), options).value();
  return plan_from_bit_config(make_bit_config(options, result), model, "test").value();
}

data::DataLoader test_loader() {
  data::SyntheticOptions synthetic;
  synthetic.size = kTestImages;
  synthetic.input_shape = {3, 32, 32};
  synthetic.seed = 3;
  data::DataLoaderOptions options;
  options.batch_size = 10;  // a last batch of 4
  return data::DataLoader(std::make_shared<data::SyntheticDataset>(synthetic), options);
}

Tensor calibration_images() {
  Generator gen(11);
  return randn({8, 3, 32, 32}, gen);
}

PtqOptions short_options() {
  PtqOptions options;
  options.weight_iterations = 4;
  options.activation_iterations = 2;
  options.batch_size = 4;
  options.init_images = 8;
  return options;
}

TEST(QuantizePoint, EqualsQuantizingAndEvaluatingStepByStep) {
  auto model = fp32_resnet20();
  const LayerBitsPlan plan = plan_for(*model, QuantMode::kPtq, 3.0 / 8);
  const EvalResult fp32 = evaluate(*model, test_loader(), Device::cpu());
  absl::StatusOr<PtqPointResult> point =
      quantize_point(*model, plan, 8, calibration_images(), short_options(), test_loader());
  ASSERT_TRUE(point.ok()) << point.status();
  EXPECT_EQ(point->test.count, kTestImages);
  EXPECT_GE(point->test.top1, 0.0);
  EXPECT_LE(point->test.top1, point->test.top5);
  EXPECT_LE(point->test.top5, 100.0);
  EXPECT_GT(point->ptq_seconds, 0.0);
  EXPECT_GT(point->eval_seconds, 0.0);
  // Every block was reconstructed (the stem is not, as in the reference).
  ASSERT_FALSE(point->reconstruction.units.empty());
  EXPECT_EQ(point->reconstruction.units.front().name, "layer1.0");
  EXPECT_EQ(point->reconstruction.units.back().name, "fc");
  // Quantization changed the model's outputs.
  EXPECT_NE(point->test.loss, fp32.loss);

  auto again = fp32_resnet20();
  absl::StatusOr<PtqResult> reconstruction =
      quantize_by_ptq(*again, plan, 8, calibration_images(), short_options());
  ASSERT_TRUE(reconstruction.ok()) << reconstruction.status();
  const EvalResult step_by_step = evaluate(*again, test_loader(), Device::cpu());
  EXPECT_EQ(step_by_step.loss, point->test.loss);
  EXPECT_EQ(step_by_step.top1, point->test.top1);
  EXPECT_EQ(step_by_step.top5, point->test.top5);
}

TEST(QuantizePoint, RefusesAQatPlanAndMissingImages) {
  auto model = fp32_resnet20();
  const LayerBitsPlan qat = plan_for(*model, QuantMode::kQat, 0.75);
  absl::StatusOr<PtqResult> result =
      quantize_by_ptq(*model, qat, 8, calibration_images(), short_options());
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("plan is for qat, expected ptq"));

  const LayerBitsPlan ptq = plan_for(*model, QuantMode::kPtq, 0.5);
  result = quantize_by_ptq(*model, ptq, 8, Tensor(), short_options());
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("no calibration images"));
}

TEST(PtqOptionsFromConfig, DefaultsForUnsetFieldsAndCountsCappedAtTheCalibrationImages) {
  proto::PtqConfig config;
  config.set_iters(10);
  config.set_calibration_images(16);
  PtqOptions options = ptq_options(config);
  const PtqOptions defaults;
  EXPECT_EQ(options.weight_iterations, 10);
  EXPECT_EQ(options.activation_iterations, 4);  // 2/5 of the weight iterations
  EXPECT_EQ(options.batch_size, 16);
  EXPECT_EQ(options.init_images, 16);
  EXPECT_EQ(options.weight_lr, defaults.weight_lr);
  EXPECT_EQ(options.activation_lr, defaults.activation_lr);
  EXPECT_EQ(options.rounding_loss_weight, defaults.rounding_loss_weight);
  EXPECT_EQ(options.activation_p, defaults.activation_p);

  config.set_iters(1);
  config.set_activation_iters(7);
  config.set_calibration_images(1024);
  config.set_weight_lr(0.5);
  config.set_activation_lr(0.25);
  config.set_rounding_weight(0.125);
  config.set_activation_p(2.0);
  options = ptq_options(config);
  EXPECT_EQ(options.activation_iterations, 7);
  EXPECT_EQ(options.batch_size, defaults.batch_size);
  EXPECT_EQ(options.init_images, defaults.init_images);
  EXPECT_EQ(options.weight_lr, 0.5);
  EXPECT_EQ(options.activation_lr, 0.25);
  EXPECT_EQ(options.rounding_loss_weight, 0.125);
  EXPECT_EQ(options.activation_p, 2.0);
  config.set_activation_iters(0);
  EXPECT_EQ(ptq_options(config).activation_iterations, 1);  // at least one
}

}  // namespace
}  // namespace ompq::solver
