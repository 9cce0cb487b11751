// The uniform and random baselines: uniform takes the largest bit-width that fits and says where
// the budget lies (checked against sizes computed by hand on a toy space, and on ResNet-18);
// random never goes over the budget, ends with no single bit step that still fits (so within one
// step of the budget), is a pure function of its seed and differs across seeds; both reject
// infeasible and BOPs budgets.
#include "solver/search/baselines.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "core/random.h"
#include "layers/models/resnet.h"
#include "solver/space/cost_model.h"

namespace ompq::solver {
namespace {

using ::testing::Each;
using ::testing::HasSubstr;

constexpr double kMiB = 1024.0 * 1024.0;

const SearchSpace& resnet18_space(QuantMode mode) {
  static const auto model = nn::resnet18();
  static const SearchSpace qat = *build_search_space(*model, QuantMode::kQat, 224, 224);
  static const SearchSpace ptq = *build_search_space(*model, QuantMode::kPtq, 224, 224);
  return mode == QuantMode::kQat ? qat : ptq;
}

const SearchSpace& resnet20_space() {
  static const SearchSpace space = [] {
    Generator gen(0);
    auto model = nn::resnet20(10, gen);
    return *build_search_space(*model, QuantMode::kQat, 32, 32);
  }();
  return space;
}

// Two units of 1 and 2 MiB of parameters at 2..4 bits: sizes 0.75, 1.125 and 1.5 MiB.
SearchSpace toy_space() {
  SearchSpace s;
  s.mode = QuantMode::kPtq;
  s.min_bits = 2;
  s.max_bits = 4;
  for (int64_t params : {int64_t{1} << 20, int64_t{2} << 20}) {
    SearchUnit u;
    u.name = "conv" + std::to_string(s.units.size());
    u.params = params;
    u.flops = u.reference_flops = 1000 * params;
    s.units.push_back(u);
  }
  return s;
}

AllocationOptions budget(double mib) {
  AllocationOptions o;
  o.budget_mib = mib;
  return o;
}

TEST(UniformAllocation, LargestBitsThatFitOnAToySpace) {
  const SearchSpace space = toy_space();
  absl::StatusOr<UniformAllocation> u = uniform_allocation(space, budget(1.3));
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->bits, 3);
  EXPECT_EQ(u->allocation.bits, std::vector<int>({3, 3}));
  EXPECT_EQ(u->allocation.units, std::vector<std::string>({"conv0", "conv1"}));
  EXPECT_DOUBLE_EQ(u->allocation.size_mib, 1.125);
  EXPECT_DOUBLE_EQ(u->next_size_mib, 1.5);
  // BOPs: FLOPs * weight bits * activation bits (8) / 1e9.
  EXPECT_DOUBLE_EQ(u->allocation.bops_g, 3000.0 * kMiB * 3 * 8 / 1e9);
  EXPECT_TRUE(u->allocation.relaxed_bits.empty());
  EXPECT_EQ(u->summary,
            "the budget 1.3000 MiB lies between the uniform 3-bit size 1.1250 MiB and the 4-bit "
            "size 1.5000 MiB: 3 bits, 0.1750 MiB under the budget");

  u = uniform_allocation(space, budget(1.125));  // exactly the 3-bit size
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->bits, 3);
  EXPECT_EQ(u->next_size_mib, 0.0);
  EXPECT_EQ(u->summary, "the budget 1.1250 MiB is the size with every searched layer at 3 bits");

  u = uniform_allocation(space, budget(0.75));
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->bits, 2);

  u = uniform_allocation(space, budget(1.5));
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->bits, 4);
  EXPECT_EQ(u->next_size_mib, 0.0);
  EXPECT_THAT(u->summary, HasSubstr("every searched layer at the largest bit-width, 4"));
}

// ResNet-18 QAT keeps its stem and classifier at 8 bits; a budget between the 5- and 6-bit sizes
// gives 5 bits.
TEST(UniformAllocation, ResNet18QatBetweenTwoUniformSizes) {
  const SearchSpace& space = resnet18_space(QuantMode::kQat);
  auto size_at = [&](int b) {
    return model_size_mib(space, std::vector<int>(space.units.size(), b));
  };
  const double budget_mib = (size_at(5) + size_at(6)) / 2;
  absl::StatusOr<UniformAllocation> u = uniform_allocation(space, budget(budget_mib));
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->bits, 5);
  EXPECT_THAT(u->allocation.bits, Each(5));
  EXPECT_EQ(u->allocation.bits.size(), 16u);
  EXPECT_EQ(u->allocation.size_mib, size_at(5));
  EXPECT_EQ(u->next_size_mib, size_at(6));
  EXPECT_LE(u->allocation.size_mib, budget_mib);
  EXPECT_GT(u->next_size_mib, budget_mib);
  EXPECT_EQ(u->allocation.bops_g, bops_g(space, u->allocation.bits, 8, false));
  EXPECT_THAT(u->summary, HasSubstr("lies between the uniform 5-bit size"));
}

TEST(Baselines, RejectInfeasibleAndBopsBudgets) {
  const SearchSpace& space = resnet18_space(QuantMode::kQat);
  for (double mib : {5.0, 12.0}) {
    absl::StatusOr<UniformAllocation> u = uniform_allocation(space, budget(mib));
    ASSERT_FALSE(u.ok());
    EXPECT_THAT(u.status().message(),
                HasSubstr("outside the feasible range [5.823158, 11.147987]"));
    absl::StatusOr<BitAllocation> r = random_allocation(space, budget(mib), 1);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.status().message(),
                HasSubstr("outside the feasible range [5.823158, 11.147987]"));
  }
  AllocationOptions o = budget(6.7);
  o.bops_budget_g = 30;
  EXPECT_THAT(uniform_allocation(space, o).status().message(),
              HasSubstr("the uniform baseline has the size budget only (BOPs budget 30 G"));
  EXPECT_THAT(random_allocation(space, o, 1).status().message(),
              HasSubstr("the random baseline has the size budget only (BOPs budget 30 G"));
}

// Never over the budget, bits in range, and maximal: every unit below max_bits would go over the
// budget with one more bit, so the gap to the budget is less than that unit's one-bit step
// (params / 2^23 MiB), stated and checked numerically too.
void expect_random_allocation_fills(const SearchSpace& space, double budget_mib, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "budget " << budget_mib << " MiB, seed " << seed);
  absl::StatusOr<BitAllocation> r = random_allocation(space, budget(budget_mib), seed);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->bits.size(), space.units.size());
  EXPECT_EQ(r->size_mib, model_size_mib(space, r->bits));
  EXPECT_EQ(r->bops_g, bops_g(space, r->bits, 8, false));
  EXPECT_LE(r->size_mib, budget_mib);
  for (size_t i = 0; i < r->bits.size(); ++i) {
    EXPECT_GE(r->bits[i], space.min_bits);
    EXPECT_LE(r->bits[i], space.max_bits);
    if (r->bits[i] == space.max_bits) continue;
    std::vector<int> raised = r->bits;
    ++raised[i];
    EXPECT_GT(model_size_mib(space, raised), budget_mib) << space.units[i].name << " still fits";
    EXPECT_LT(budget_mib - r->size_mib, space.units[i].params / (8 * kMiB) * (1 + 1e-12));
  }
}

TEST(RandomAllocation, NeverOverBudgetAndWithinOneStepOfIt) {
  const SearchSpace& qat = resnet18_space(QuantMode::kQat);
  const SearchSpace& ptq = resnet18_space(QuantMode::kPtq);
  const Range qat_range = size_range_mib(qat), ptq_range = size_range_mib(ptq);
  for (uint64_t seed = 0; seed < 6; ++seed) {
    for (double f : {0.0, 0.1, 0.5, 0.75, 0.99, 1.0}) {
      expect_random_allocation_fills(qat, qat_range.min + f * (qat_range.max - qat_range.min),
                                     seed);
      expect_random_allocation_fills(ptq, ptq_range.min + f * (ptq_range.max - ptq_range.min),
                                     seed);
    }
    expect_random_allocation_fills(resnet20_space(), 0.25, seed);
    expect_random_allocation_fills(toy_space(), 1.3, seed);
  }
  // The ends of the range leave no choice.
  absl::StatusOr<BitAllocation> all_min = random_allocation(qat, budget(qat_range.min), 7);
  ASSERT_TRUE(all_min.ok());
  EXPECT_THAT(all_min->bits, Each(4));
  absl::StatusOr<BitAllocation> all_max = random_allocation(qat, budget(qat_range.max), 7);
  ASSERT_TRUE(all_max.ok());
  EXPECT_THAT(all_max->bits, Each(8));
}

TEST(RandomAllocation, DeterministicPerSeedAndDifferentAcrossSeeds) {
  const SearchSpace& space = resnet20_space();
  std::set<std::vector<int>> seen;
  std::vector<std::set<int>> values_per_unit(space.units.size());
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    absl::StatusOr<BitAllocation> a = random_allocation(space, budget(0.25), seed);
    absl::StatusOr<BitAllocation> b = random_allocation(space, budget(0.25), seed);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->bits, b->bits) << "seed " << seed;
    const bool new_allocation = seen.insert(a->bits).second;
    if (seed <= 3) EXPECT_TRUE(new_allocation) << "seed " << seed << " repeats an allocation";
    for (size_t i = 0; i < a->bits.size(); ++i) values_per_unit[i].insert(a->bits[i]);
  }
  // Few collisions (the budget leaves the six stage-3 convs, which hold most of the size, few
  // choices), and every large layer varies. The small stage-1 convs end at 8 bits: the fill
  // raises them last, as their one-bit steps are the ones that still fit.
  EXPECT_GE(seen.size(), 16u);
  for (size_t i = 0; i < space.units.size(); ++i) {
    if (space.units[i].name.rfind("layer3.", 0) == 0) {
      EXPECT_GE(values_per_unit[i].size(), 2u) << space.units[i].name;
    }
  }
}

}  // namespace
}  // namespace ompq::solver
