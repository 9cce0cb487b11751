// The budget sweep's correlation mode (SweepOptions::correlation_samples, correlation.h): the
// options it refuses, each named with its value.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "solver/pipeline/sweep.h"

namespace ompq::solver {
namespace {

using ::testing::HasSubstr;

SweepOptions correlation_options() {
  SweepOptions o;
  o.config.set_quant(proto::QUANT_PTQ);
  o.config.set_output_dir("out");
  o.config.mutable_ptq()->set_iters(1);
  o.config.mutable_ptq()->set_calibration_images(8);
  o.config.mutable_search()->set_images(32);
  o.methods = {SweepMethod::kRandom};
  o.budget_fractions = {0.3};
  o.random_seeds = {0, 1, 2, 3};
  o.correlation_samples = 4;
  return o;
}

TEST(SweepCorrelation, NamesTheBadOption) {
  EXPECT_TRUE(validate_sweep_options(correlation_options()).ok())
      << validate_sweep_options(correlation_options());
  auto error = [](const std::function<void(SweepOptions&)>& change) {
    SweepOptions o = correlation_options();
    change(o);
    return std::string(validate_sweep_options(o).message());
  };
  EXPECT_THAT(error([](SweepOptions& o) { o.correlation_samples = -1; }),
              HasSubstr("correlation samples -1 (expected >= 0)"));
  EXPECT_THAT(error([](SweepOptions& o) {
                o.budget_fractions = {0.3, 0.4};
              }),
              HasSubstr("the correlation experiment (4 samples) needs one budget (got 2)"));
  EXPECT_THAT(error([](SweepOptions& o) { o.methods = {SweepMethod::kUniform}; }),
              HasSubstr("and the random method"));
  EXPECT_THAT(error([](SweepOptions& o) { o.config.mutable_search()->set_images(1); }),
              HasSubstr("needs search images >= 2 (got 1)"));
  EXPECT_THAT(error([](SweepOptions& o) { o.hessian.max_iterations = 0; }),
              HasSubstr("hessian iterations >= 1 (got 0)"));
  // Without the correlation mode the same sweep takes several budgets.
  EXPECT_TRUE(validate_sweep_options([] {
                SweepOptions o = correlation_options();
                o.correlation_samples = 0;
                o.budget_fractions = {0.3, 0.4};
                return o;
              }())
                  .ok());
}

}  // namespace
}  // namespace ompq::solver
