// Bit allocation: the toy examples of docs/METHOD.md 2.4/2.5, every golden vector of 2.11 (the six
// released ResNet-18 PTQ configurations from the projection + DFS, and the ResNet-18 QAT 6.7 MB
// LP vertex + DFS), the LP against an independent fractional-knapsack greedy (with weights far
// outside double's range), the ILP against brute force (size and BOPs constraints), and the
// errors for budgets outside the feasible range.
#include "solver/search/bit_allocation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>

#include "layers/models/resnet.h"
#include "solver/space/cost_model.h"

namespace ompq::solver {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr double kMiB = 1024.0 * 1024.0;

std::vector<double> logs(const std::vector<double>& w, double shift = 0.0) {
  std::vector<double> out;
  for (double v : w) out.push_back(std::log(v) + shift);
  return out;
}

const SearchSpace& resnet18_space(QuantMode mode) {
  static const auto model = nn::resnet18();
  static const SearchSpace qat = *build_search_space(*model, QuantMode::kQat, 224, 224);
  static const SearchSpace ptq = *build_search_space(*model, QuantMode::kPtq, 224, 224);
  return mode == QuantMode::kQat ? qat : ptq;
}

// A hand-made space: params in MiB units of 2^20, FLOPs as given.
SearchSpace toy_space(const std::vector<int64_t>& params, const std::vector<int64_t>& flops,
                      int min_bits, int max_bits) {
  SearchSpace s;
  s.mode = QuantMode::kPtq;
  s.min_bits = min_bits;
  s.max_bits = max_bits;
  for (size_t i = 0; i < params.size(); ++i) {
    SearchUnit u;
    u.name = "layer" + std::to_string(i);
    u.params = params[i];
    u.flops = u.reference_flops = flops[i];
    s.units.push_back(u);
  }
  return s;
}

const std::vector<double> kToyWeights = {0.35157728, 0.36093038,
                                         0.44932896};  // docs/METHOD.md 2.4, beta 1

TEST(BitAllocation, ToyProjectionOfSpec25) {
  const Projection p = project_onto_budget({{1, 2, 3}, 0.5, 1.0, 4.0});
  EXPECT_NEAR(p.lambda, 1.0 / 7, 1e-15);
  EXPECT_NEAR(8 * p.x[0], 6.857143, 5e-7);
  EXPECT_NEAR(8 * p.x[1], 5.714286, 5e-7);
  EXPECT_NEAR(8 * p.x[2], 4.571429, 5e-7);
  // At the bounds of the feasible range: nothing to reduce, or everything at the lower bound.
  EXPECT_EQ(project_onto_budget({{1, 2, 3}, 0.5, 1.0, 6.0}).lambda, 0.0);
  EXPECT_THAT(project_onto_budget({{1, 2, 3}, 0.5, 1.0, 3.0}).x, ElementsAre(0.5, 0.5, 0.5));
}

TEST(BitAllocation, ToyLpOfSpec25IsTheVertexWhateverTheWeightScale) {
  for (double shift : {0.0, std::log(1e-30), -1e4, 700.0}) {
    absl::StatusOr<std::vector<double>> x =
        solve_relaxed_lp({{1, 2, 3}, 0.5, 1.0, 4.0}, logs(kToyWeights, shift));
    ASSERT_TRUE(x.ok()) << x.status();
    EXPECT_THAT(*x, ElementsAre(1.0, 0.75, 0.5)) << "log shift " << shift;  // bits [8, 6, 4]
  }
}

TEST(BitAllocation, ProjectionReproducesTheReleasedResNet18PtqConfigs) {
  struct Golden {
    double budget, lambda;
    std::vector<int> bits;
    double size;
  };
  const std::vector<Golden> golden = {
      {3.0, 0.415581435331, {4, 3, 4, 4, 4, 4, 4, 3, 4, 4, 2, 2, 2, 2, 2, 2, 2, 2}, 2.9983},
      {3.5, 0.133884355547, {4, 3, 3, 4, 4, 4, 4, 4, 4, 4, 3, 3, 4, 3, 2, 2, 2, 3}, 3.4988},
      {4.0, 0.085404977470, {4, 4, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3, 4, 3, 2, 3, 3, 3}, 4.0000},
      {4.5, 0.058274951981, {4, 3, 3, 4, 4, 4, 4, 4, 4, 4, 3, 3, 4, 4, 3, 3, 3, 3}, 4.4994},
      {5.0, 0.031144926493, {4, 3, 3, 3, 4, 4, 4, 3, 4, 3, 4, 3, 4, 3, 3, 4, 4, 4}, 4.9997},
      {5.5, 0.004014901004, {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 3, 4, 4, 4, 4, 4, 4, 4}, 5.4997},
  };
  const SearchSpace& space = resnet18_space(QuantMode::kPtq);
  RelaxedProblem problem{{}, 0.25, 0.5, 0.0};
  for (const SearchUnit& u : space.units) problem.sizes.push_back(u.params / kMiB);
  for (const Golden& g : golden) {
    problem.budget = g.budget;
    EXPECT_NEAR(project_onto_budget(problem).lambda, g.lambda, 1e-11) << g.budget;
    AllocationOptions options;
    options.solver = SolverKind::kProjection;
    options.rounding = Rounding::kDfs;
    options.budget_mib = g.budget;
    absl::StatusOr<BitAllocation> a = allocate_bits(space, {}, options);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_THAT(a->bits, ElementsAreArray(g.bits)) << "budget " << g.budget;
    EXPECT_NEAR(a->size_mib, g.size, 5e-5) << g.budget;
    EXPECT_LE(a->size_mib, g.budget);
    EXPECT_EQ(a->units.front(), "conv1");
  }
  // The continuous input to DFS for 4.5 MB (docs/METHOD.md 2.11).
  problem.budget = 4.5;
  const std::vector<double> relaxed = {
      3.995760270, 3.983553261, 3.983553261, 3.983553261, 3.983553261, 3.967106521,
      3.930570858, 3.934326861, 3.934326861, 3.868653722, 3.722738705, 3.737535080,
      3.737535080, 3.475070159, 2.891865366, 2.950595591, 2.950595591, 3.771918866};
  const Projection p = project_onto_budget(problem);
  for (size_t i = 0; i < relaxed.size(); ++i) EXPECT_NEAR(8 * p.x[i], relaxed[i], 5e-9);
}

// Weights that order the ResNet-18 QAT layers as the released 6.7 MB configuration implies:
// layers {9, 12, 13, 14, 15} last, layer 10 next, the rest first.
std::vector<double> resnet18_qat_log_weights(const SearchSpace& space, double shift) {
  std::vector<double> log_w;
  for (size_t i = 0; i < space.units.size(); ++i) {
    const bool low = i == 9 || i >= 12;
    const double ratio = low ? 1.0 : (i == 10 ? 2.0 : 3.0);
    log_w.push_back(std::log(space.units[i].params * ratio) + shift);
  }
  return log_w;
}

TEST(BitAllocation, LpVertexOfTheResNet18Qat67Config) {
  const SearchSpace& space = resnet18_space(QuantMode::kQat);
  AllocationOptions options;
  options.solver = SolverKind::kLp;
  options.rounding = reference_rounding("resnet18");
  options.budget_mib = 6.7;
  for (double shift : {0.0, -5000.0}) {
    absl::StatusOr<BitAllocation> a =
        allocate_bits(space, resnet18_qat_log_weights(space, shift), options);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_NEAR(a->relaxed_bits[10], 5.894341, 5e-7);
    for (size_t i = 0; i < 16; ++i) {
      if (i != 10) EXPECT_EQ(a->relaxed_bits[i], (i == 9 || i >= 12) ? 4.0 : 8.0) << i;
    }
    EXPECT_THAT(a->bits, ElementsAre(8, 8, 8, 8, 8, 8, 8, 8, 8, 4, 5, 8, 4, 4, 4, 4));
    EXPECT_NEAR(a->size_mib, 6.6371, 5e-5);
  }
}

// The LP optimum by the greedy of docs/METHOD.md 2.5, computed on log ratios.
std::vector<double> greedy_knapsack(const RelaxedProblem& p, const std::vector<double>& log_w) {
  const size_t n = p.sizes.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return log_w[a] - std::log(p.sizes[a]) > log_w[b] - std::log(p.sizes[b]);
  });
  std::vector<double> x(n, p.lower);
  double left = p.budget - p.lower * std::accumulate(p.sizes.begin(), p.sizes.end(), 0.0);
  for (size_t i : order) {
    const double raise = std::min(p.upper - p.lower, left / p.sizes[i]);
    x[i] += raise;
    left -= raise * p.sizes[i];
  }
  return x;
}

TEST(BitAllocation, LpMatchesTheGreedyVertexForWeightsBeyondDoubleRange) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> size(0.01, 3.0), log_weight(-2000.0, 0.0), u(0.0, 1.0);
  for (int trial = 0; trial < 20; ++trial) {
    RelaxedProblem p{{}, 0.25, 0.5, 0.0};
    std::vector<double> log_w;
    for (int i = 0; i < 30; ++i) {
      p.sizes.push_back(size(rng));
      log_w.push_back(log_weight(rng));
    }
    const double total = std::accumulate(p.sizes.begin(), p.sizes.end(), 0.0);
    p.budget = total * (0.25 + 0.25 * u(rng));
    absl::StatusOr<std::vector<double>> x = solve_relaxed_lp(p, log_w);
    ASSERT_TRUE(x.ok()) << x.status();
    const std::vector<double> expected = greedy_knapsack(p, log_w);
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_NEAR((*x)[i], expected[i], 1e-9) << "trial " << trial << " layer " << i;
    }
  }
}

// Brute force over every integer allocation: the best objective under both budgets.
double best_objective(const SearchSpace& s, const std::vector<double>& w, double size_budget,
                      double bops_budget, int act_bits) {
  const size_t n = s.units.size();
  std::vector<int> bits(n, s.min_bits);
  double best = -1.0;
  std::function<void(size_t)> visit = [&](size_t i) {
    if (i == n) {
      if (model_size_mib(s, bits) > size_budget) return;
      if (bops_budget > 0 && bops_g(s, bits, act_bits, false) > bops_budget) return;
      double value = 0.0;
      for (size_t k = 0; k < n; ++k) value += w[k] * bits[k];
      best = std::max(best, value);
      return;
    }
    for (int b = s.min_bits; b <= s.max_bits; ++b) {
      bits[i] = b;
      visit(i + 1);
    }
  };
  visit(0);
  return best;
}

TEST(BitAllocation, IlpIsOptimalAndNeverOverBudget) {
  const SearchSpace s =
      toy_space({300000, 120000, 900000, 50000, 610000, 222222},
                {4000000000, 900000000, 2500000000, 700000000, 1900000000, 1200000000}, 2, 4);
  const std::vector<double> w = {0.9, 0.4, 0.75, 0.2, 0.5, 0.66};
  const Range sizes = size_range_mib(s);
  std::mt19937 rng(9);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int trial = 0; trial < 12; ++trial) {
    AllocationOptions o;
    o.solver = SolverKind::kIlp;
    o.budget_mib = sizes.min + (sizes.max - sizes.min) * u(rng);
    if (trial % 2 == 1) {
      const Range bops = bops_range_g(s, 8, false);
      o.bops_budget_g = bops.min + (bops.max - bops.min) * u(rng);
    }
    absl::StatusOr<BitAllocation> a = allocate_bits(s, logs(w, -800.0), o);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_TRUE(a->relaxed_bits.empty());
    EXPECT_LE(a->size_mib, o.budget_mib);
    if (o.bops_budget_g > 0) EXPECT_LE(a->bops_g, o.bops_budget_g);
    double value = 0.0;
    for (size_t k = 0; k < w.size(); ++k) value += w[k] * a->bits[k];
    EXPECT_NEAR(value, best_objective(s, w, o.budget_mib, o.bops_budget_g, 8), 1e-9)
        << "trial " << trial;
  }
}

TEST(BitAllocation, HalfToEvenMayExceedTheBudgetDfsDoesNot) {
  const SearchSpace& space = resnet18_space(QuantMode::kPtq);
  AllocationOptions o;
  o.solver = SolverKind::kProjection;
  o.budget_mib = 4.5;
  o.rounding = Rounding::kHalfToEven;
  absl::StatusOr<BitAllocation> nearest = allocate_bits(space, {}, o);
  ASSERT_TRUE(nearest.ok());
  EXPECT_GT(nearest->size_mib, 4.5);
  o.rounding = Rounding::kDfs;
  absl::StatusOr<BitAllocation> dfs = allocate_bits(space, {}, o);
  ASSERT_TRUE(dfs.ok());
  EXPECT_LE(dfs->size_mib, 4.5);
}

TEST(BitAllocation, BudgetsOutsideTheFeasibleRangeAreErrorsThatStateIt) {
  AllocationOptions o;
  o.solver = SolverKind::kProjection;
  o.budget_mib = 5.0;
  absl::StatusOr<BitAllocation> a = allocate_bits(resnet18_space(QuantMode::kQat), {}, o);
  ASSERT_FALSE(a.ok());
  EXPECT_THAT(std::string(a.status().message()),
              HasSubstr("model size budget 5.000000 MiB is outside the feasible range [5.8"));
  EXPECT_THAT(std::string(a.status().message()), HasSubstr("for qat (16 searched layers at 4..8"));
  o.budget_mib = 6.0;
  a = allocate_bits(resnet18_space(QuantMode::kPtq), {}, o);
  ASSERT_FALSE(a.ok());
  EXPECT_THAT(std::string(a.status().message()),
              HasSubstr("outside the feasible range [2.786997, 5.573994] MiB for ptq"));
}

TEST(BitAllocation, BadOptions) {
  const SearchSpace& space = resnet18_space(QuantMode::kQat);
  const std::vector<double> log_w(16, 0.0);
  auto error = [&](AllocationOptions o, const std::vector<double>& w = std::vector<double>(16)) {
    absl::StatusOr<BitAllocation> a = allocate_bits(space, w, o);
    return a.ok() ? std::string("ok") : std::string(a.status().message());
  };
  AllocationOptions o;
  o.budget_mib = 6.7;
  EXPECT_EQ(error(o), "ok");
  EXPECT_THAT(error(o, {0.0, 1.0}), HasSubstr("2 layer weights for 16 searched layers"));
  EXPECT_THAT(error(o, std::vector<double>(16, NAN)), HasSubstr("log weight 0 is nan"));
  AllocationOptions bad = o;
  bad.budget_mib = NAN;
  EXPECT_THAT(error(bad), HasSubstr("model size budget nan MiB (expected > 0)"));
  bad = o;
  bad.act_bits = 0;
  EXPECT_THAT(error(bad), HasSubstr("activation bits 0"));
  bad = o;
  bad.bops_budget_g = 50;
  EXPECT_THAT(error(bad), HasSubstr("a BOPs budget needs the ilp solver"));
  bad.solver = SolverKind::kIlp;
  bad.bops_budget_g = 10;
  EXPECT_THAT(error(bad), HasSubstr("BOPs budget 10.0000 G is below the smallest BOPs"));
  EXPECT_EQ(reference_rounding("resnet18"), Rounding::kDfs);
  EXPECT_EQ(reference_rounding("mobilenet_v2"), Rounding::kHalfToEven);
}

}  // namespace
}  // namespace ompq::solver
