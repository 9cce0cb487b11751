// log_lp_objective against sums done by hand (docs/METHOD.md 2.4's small example, and weights far
// below a double's range), hessian_objective on a hand table, and the errors for mismatched
// inputs.
#include "solver/search/allocation_score.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "solver/search/orm.h"

namespace ompq::solver {
namespace {

TEST(AllocationScore, LpObjectiveOfTheMethodExample) {
  // METHOD.md 2.4: gamma = [1.1, 1.3, 0.8], beta = 1 -> w = [0.35157728, 0.36093038, 0.44932896].
  const std::vector<double> log_w = log_layer_weights(log_importance({1.1, 1.3, 0.8}, 1.0));
  const double expected = 0.35157728 * 4 + 0.36093038 * 3 + 0.44932896 * 2;
  EXPECT_NEAR(log_lp_objective(log_w, {4, 3, 2}), std::log(expected), 1e-8);
}

TEST(AllocationScore, LpObjectiveKeepsWeightsThatUnderflow) {
  // exp(-1000) is 0 in double; the logarithm of 2 e^-1000 + 4 e^-1001 is not.
  EXPECT_NEAR(log_lp_objective({-1000, -1001}, {2, 4}), -1000 + std::log(2 + 4 * std::exp(-1.0)),
              1e-12);
  // More bits on the heavier unit scores higher.
  EXPECT_GT(log_lp_objective({-1000, -1001}, {4, 2}), log_lp_objective({-1000, -1001}, {2, 4}));
}

TEST(AllocationScore, HessianObjectiveSumsTheChosenCosts) {
  const std::vector<std::vector<double>> costs = {{9, 4, 1}, {0.5, 0.25, 0.125}};
  EXPECT_DOUBLE_EQ(hessian_objective(costs, {2, 4}, 2), 9.125);
  EXPECT_DOUBLE_EQ(hessian_objective(costs, {3, 2}, 2), 4.5);
}

TEST(AllocationScore, MismatchedInputsAreErrors) {
  EXPECT_THROW(log_lp_objective({0.0, 1.0}, {2}), Error);
  EXPECT_THROW(log_lp_objective({}, {}), Error);
  EXPECT_THROW(log_lp_objective({0.0}, {0}), Error);
  EXPECT_THROW(log_lp_objective({-INFINITY}, {2}), Error);
  EXPECT_THROW(hessian_objective({{1, 2, 3}}, {2, 3}, 2), Error);
  try {
    hessian_objective({{1, 2, 3}}, {5}, 2);
    FAIL() << "5 bits has no cost";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(),
                ::testing::HasSubstr("unit 0 at 5 bits has no cost (costs for 2..4 bits)"));
  }
}

}  // namespace
}  // namespace ompq::solver
