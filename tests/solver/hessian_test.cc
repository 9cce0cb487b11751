// The Hessian-trace baseline: Hutchinson's estimator against Hessians known in closed form, its
// determinism, stopping rule and restoration of the weights; the traces of a real model; and the
// per-(unit, bits) integer program that turns traces into bits.
#include "solver/search/hessian.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/functional/elementwise.h"
#include "core/functional/linalg.h"
#include "core/functional/reduce.h"
#include "core/random.h"
#include "layers/models/resnet.h"
#include "solver/space/cost_model.h"

namespace ompq::solver {
namespace {

using ::testing::HasSubstr;

Tensor random_tensor(const Shape& shape, uint64_t seed, double mean = 0.0) {
  Generator gen(seed);
  Tensor x = Tensor::empty(shape);
  ops::normal_(x, mean, 1.0, gen);
  return x;
}

Tensor parameter(const Shape& shape, uint64_t seed) {
  Tensor w = random_tensor(shape, seed);
  w.set_requires_grad(true);
  return w;
}

// 0.5 * sum(d * w^2): Hessian diag(d), so every Rademacher sample is exact (v_j^2 = 1) and the
// average trace is mean(d).
struct DiagonalQuadratic {
  Tensor w = parameter({3, 4}, 1);
  Tensor d = random_tensor({3, 4}, 2, 3.0);
  Tensor loss() const { return sum(mul(d, square(w))) * 0.5; }
  double average_trace() const {
    double s = 0.0;
    for (float x : d.to_vector<float>()) s += x;
    return s / 12.0;
  }
};

TEST(Hutchinson, ExactOnADiagonalHessianAndStopsAtOnce) {
  DiagonalQuadratic q;
  HessianOptions o;
  o.max_iterations = 50;
  absl::StatusOr<HessianTraces> r = hutchinson_traces(
      {{q.w}}, [&] { return q.loss(); }, o);
  ASSERT_TRUE(r.ok()) << r.status();
  // The finite difference of a quadratic is exact up to f32 rounding of the perturbed weights.
  EXPECT_NEAR(r->average_trace[0], q.average_trace(), 1e-3 * std::abs(q.average_trace()));
  // Identical estimates: the running mean does not move, so the rule stops at its first check.
  EXPECT_TRUE(r->converged);
  EXPECT_EQ(r->iterations, 2);
  EXPECT_LT(r->relative_change, o.tolerance);
}

// Two coupled units: 0.5 * ||x a||^2 + 0.5 * sum(d * b^2) + sum(a) * sum(b), a [3, 2], b [5].
// Tr(H_aa) = 2 * ||x||_F^2 (the Hessian of a is (x^T x) kron I_2), Tr(H_bb) = sum(d); the cross
// block (all ones) must average out.
struct CoupledQuadratic {
  Tensor x = random_tensor({6, 3}, 3);
  Tensor a = parameter({3, 2}, 4);
  Tensor b = parameter({5}, 5);
  Tensor d = random_tensor({5}, 6, 4.0);
  Tensor loss() const {
    return sum(square(matmul(x, a))) * 0.5 + sum(mul(d, square(b))) * 0.5 + sum(a) * sum(b);
  }
  std::vector<double> average_traces() const {
    double xx = 0.0, dd = 0.0;
    for (float v : x.to_vector<float>()) xx += static_cast<double>(v) * v;
    for (float v : d.to_vector<float>()) dd += v;
    return {2.0 * xx / 6.0, dd / 5.0};
  }
};

TEST(Hutchinson, MatchesClosedFormTracesOfCoupledUnits) {
  CoupledQuadratic q;
  HessianOptions o;
  o.max_iterations = 4000;
  o.tolerance = 1e-12;  // run every iteration
  absl::StatusOr<HessianTraces> r = hutchinson_traces(
      {{q.a}, {q.b}}, [&] { return q.loss(); }, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->iterations, 4000);
  EXPECT_FALSE(r->converged);
  const std::vector<double> expected = q.average_traces();
  // Monte Carlo error: a sample's standard deviation is below the trace here, so 4000 samples
  // put the mean within a few percent (5% is more than 3 standard errors).
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_NEAR(r->average_trace[i], expected[i], 0.05 * std::abs(expected[i])) << "unit " << i;
  }
}

TEST(Hutchinson, DeterministicForASeedAndRestoresTheWeights) {
  CoupledQuadratic q;
  const std::vector<float> a = q.a.to_vector<float>(), b = q.b.to_vector<float>();
  HessianOptions o;
  o.max_iterations = 5;
  o.tolerance = 1e-12;
  o.seed = 7;
  auto run = [&] {
    return hutchinson_traces(
        {{q.a}, {q.b}}, [&] { return q.loss(); }, o);
  };
  absl::StatusOr<HessianTraces> first = run(), second = run();
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->average_trace, second->average_trace);
  o.seed = 8;
  absl::StatusOr<HessianTraces> other = run();
  ASSERT_TRUE(other.ok());
  EXPECT_NE(first->average_trace, other->average_trace);
  EXPECT_EQ(q.a.to_vector<float>(), a);  // bit for bit
  EXPECT_EQ(q.b.to_vector<float>(), b);
  EXPECT_FALSE(q.a.grad().defined());
  EXPECT_FALSE(q.b.grad().defined());
}

TEST(Hutchinson, BadInputs) {
  DiagonalQuadratic q;
  auto loss = [&] { return q.loss(); };
  HessianOptions o;
  o.max_iterations = 0;
  EXPECT_THAT(hutchinson_traces({{q.w}}, loss, o).status().message(),
              HasSubstr("max_iterations 0 (expected >= 1)"));
  o = HessianOptions();
  o.tolerance = 0.0;
  EXPECT_THAT(hutchinson_traces({{q.w}}, loss, o).status().message(),
              HasSubstr("tolerance 0 (expected finite and > 0)"));
  EXPECT_THAT(hutchinson_traces({}, loss, HessianOptions()).status().message(),
              HasSubstr("no units"));
  Tensor constant = random_tensor({2}, 9);
  EXPECT_THAT(hutchinson_traces({{constant}}, loss, HessianOptions()).status().message(),
              HasSubstr("not a non-empty f32 leaf requiring grad"));
}

// PTQ space of resnet20 (10 classes) on 32 px images.
struct SmallResNet {
  Generator gen{1};
  std::shared_ptr<nn::Model> model = nn::resnet20(10, gen);
  SearchSpace space = build_search_space(*model, QuantMode::kPtq, 32, 32).value();
  Tensor images = random_tensor({4, 3, 32, 32}, 2);
  Tensor labels = Tensor::from_vector<int64_t>({0, 3, 5, 9}, {4});
};

TEST(UnitHessianTraces, ResNet20KeepsWeightsModeAndFlags) {
  SmallResNet m;
  const TensorMap before = m.model->state_dict();
  std::map<std::string, std::vector<float>> values;
  for (const auto& [name, t] : before) {
    if (t.dtype() == DType::kF32) values[name] = t.to_vector<float>();
  }
  HessianOptions o;
  o.max_iterations = 2;
  absl::StatusOr<HessianTraces> r = unit_hessian_traces(*m.model, m.space, m.images, m.labels, o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->average_trace.size(), m.space.units.size());
  for (double t : r->average_trace) EXPECT_TRUE(std::isfinite(t));
  EXPECT_EQ(r->iterations, 2);
  EXPECT_TRUE(m.model->is_training());
  for (const auto& [name, t] : m.model->state_dict()) {
    if (t.dtype() == DType::kF32) EXPECT_EQ(t.to_vector<float>(), values[name]) << name;
  }
  for (const auto& [name, t] : m.model->named_parameters()) {
    EXPECT_TRUE(t.requires_grad()) << name;
    EXPECT_FALSE(t.grad().defined()) << name;
  }
}

TEST(UnitHessianTraces, NoCalibrationImages) {
  SmallResNet m;
  const Tensor none = Tensor::empty({0, 3, 32, 32});
  const Tensor no_labels = Tensor::from_vector<int64_t>({}, {0});
  EXPECT_THAT(
      unit_hessian_traces(*m.model, m.space, none, no_labels, HessianOptions()).status().message(),
      HasSubstr("expected calibration images [N, C, H, W] with N >= 1, got [0, 3, 32, 32]"));
  EXPECT_THAT(unit_hessian_traces(*m.model, m.space, m.images, no_labels, HessianOptions())
                  .status()
                  .message(),
              HasSubstr("expected one label per image (4)"));
}

TEST(HessianSearch, ResNet20WithinTheBudget) {
  SmallResNet m;
  AllocationOptions a;
  a.solver = SolverKind::kIlp;
  a.budget_mib = 0.5 * (size_range_mib(m.space).min + size_range_mib(m.space).max);
  HessianOptions o;
  o.max_iterations = 2;
  absl::StatusOr<HessianSearchResult> r =
      hessian_search(*m.model, m.space, m.images, m.labels, o, a);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LE(r->allocation.size_mib, a.budget_mib);
  ASSERT_EQ(r->costs.size(), m.space.units.size());
  for (size_t i = 0; i < r->costs.size(); ++i) {
    ASSERT_EQ(r->costs[i].size(), 3u);
    // More bits never perturb the weights more (the sign is the trace's).
    if (r->traces.average_trace[i] > 0) {
      EXPECT_GE(r->costs[i][0], r->costs[i][1]);
      EXPECT_GE(r->costs[i][1], r->costs[i][2]);
    }
  }
  a.budget_mib = 0.1 * size_range_mib(m.space).min;
  EXPECT_THAT(hessian_search(*m.model, m.space, m.images, m.labels, o, a).status().message(),
              HasSubstr("outside the feasible range"));
}

// Two units of 1 MiB of parameters at 2..4 bits: sizes 0.5, 0.75 and 1 MiB per unit... of the
// pair: 0.5 MiB (both at 2) to 1 MiB (both at 4).
SearchSpace two_units() {
  SearchSpace s;
  s.mode = QuantMode::kPtq;
  s.min_bits = 2;
  s.max_bits = 4;
  for (int k = 0; k < 2; ++k) {
    SearchUnit u;
    u.name = "conv" + std::to_string(k);
    u.params = int64_t{1} << 20;
    u.flops = u.reference_flops = 1000 * u.params;
    s.units.push_back(u);
  }
  return s;
}

// HAWQ-V3's cost shape: trace * perturbation, the perturbation falling 4x per bit.
std::vector<std::vector<double>> costs_for(double trace0, double trace1) {
  return {{16 * trace0, 4 * trace0, trace0}, {16 * trace1, 4 * trace1, trace1}};
}

TEST(AllocateBitsByCost, TheMoreSensitiveUnitGetsMoreBits) {
  const SearchSpace s = two_units();
  AllocationOptions a;
  a.solver = SolverKind::kIlp;
  a.budget_mib = 0.75;  // 12 bits in total: (2, 4), (3, 3) or (4, 2)
  absl::StatusOr<BitAllocation> r = allocate_bits_by_cost(s, costs_for(10.0, 1.0), a);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->bits, (std::vector<int>{4, 2}));
  EXPECT_LE(r->size_mib, a.budget_mib);
  r = allocate_bits_by_cost(s, costs_for(1.0, 10.0), a);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->bits, (std::vector<int>{2, 4}));
  // Equal sensitivity: (3, 3) costs 8, (4, 2) or (2, 4) cost 17.
  r = allocate_bits_by_cost(s, costs_for(1.0, 1.0), a);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->bits, (std::vector<int>{3, 3}));
}

TEST(AllocateBitsByCost, BopsBudget) {
  const SearchSpace s = two_units();
  AllocationOptions a;
  a.solver = SolverKind::kIlp;
  a.budget_mib = 1.0;  // room for everything at 4 bits
  a.act_bits = 8;
  const double per_bit = bops_g(s, {1, 0}, 8, false);
  a.bops_budget_g = 5 * per_bit;  // 5 bits in total
  absl::StatusOr<BitAllocation> r = allocate_bits_by_cost(s, costs_for(10.0, 1.0), a);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->bits, (std::vector<int>{3, 2}));
  EXPECT_LE(r->bops_g, a.bops_budget_g * (1 + 1e-12));
}

TEST(AllocateBitsByCost, BadInputs) {
  const SearchSpace s = two_units();
  AllocationOptions a;
  a.solver = SolverKind::kIlp;
  a.budget_mib = 0.4;
  EXPECT_THAT(allocate_bits_by_cost(s, costs_for(1, 1), a).status().message(),
              HasSubstr("outside the feasible range [0.500000, 1.000000] MiB"));
  a.budget_mib = 0.75;
  EXPECT_THAT(allocate_bits_by_cost(s, {{1, 2, 3}}, a).status().message(),
              HasSubstr("costs for 1 units, the search space has 2"));
  EXPECT_THAT(allocate_bits_by_cost(s, {{1, 2, 3}, {1, 2}}, a).status().message(),
              HasSubstr("unit 1 (conv1) has 2 costs (expected one per bit-width 2..4)"));
  EXPECT_THAT(allocate_bits_by_cost(s, {{1, 2, 3}, {1, std::nan(""), 3}}, a).status().message(),
              HasSubstr("unit 1 (conv1) at 3 bits costs nan"));
  a.solver = SolverKind::kLp;
  EXPECT_THAT(allocate_bits_by_cost(s, costs_for(1, 1), a).status().message(),
              HasSubstr("solver ilp, not lp"));
}

}  // namespace
}  // namespace ompq::solver
