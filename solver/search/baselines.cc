#include "solver/search/baselines.h"

#include <vector>

#include "absl/strings/str_format.h"
#include "core/error.h"
#include "core/philox.h"
#include "solver/space/cost_model.h"

namespace ompq::solver {
namespace {

absl::Status check_baseline_options(const SearchSpace& space, const AllocationOptions& options,
                                    const char* baseline) {
  if (options.bops_budget_g > 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the %s baseline has the size budget only (BOPs budget %g G; the ilp solver takes one)",
        baseline, options.bops_budget_g));
  }
  return check_allocation_options(space, options);
}

BitAllocation make_allocation(const SearchSpace& space, std::vector<int> bits,
                              const AllocationOptions& options) {
  BitAllocation a;
  for (const SearchUnit& u : space.units) a.units.push_back(u.name);
  a.size_mib = model_size_mib(space, bits);
  a.bops_g = bops_g(space, bits, options.act_bits, options.reference_bops);
  a.bits = std::move(bits);
  return a;
}

// Uniform draws from a seed's Philox stream, one word per draw.
class Draws {
 public:
  explicit Draws(uint64_t seed) : seed_(seed) {}
  // Uniform in [0, n) by multiply-shift: no modulo, and a bias below n / 2^32.
  size_t below(size_t n) {
    return static_cast<size_t>((static_cast<uint64_t>(philox_word(seed_, index_++)) * n) >> 32);
  }

 private:
  uint64_t seed_;
  uint64_t index_ = 0;
};

// Adds `step` to a random unit among those `eligible`; false when none is.
template <typename Eligible>
bool step_random_unit(std::vector<int>& bits, int step, Eligible eligible, Draws& draws) {
  std::vector<size_t> candidates;
  for (size_t i = 0; i < bits.size(); ++i) {
    if (eligible(i)) candidates.push_back(i);
  }
  if (candidates.empty()) return false;
  bits[candidates[draws.below(candidates.size())]] += step;
  return true;
}

}  // namespace

absl::StatusOr<UniformAllocation> uniform_allocation(const SearchSpace& space,
                                                     const AllocationOptions& options) {
  OMPQ_RETURN_IF_ERROR(check_baseline_options(space, options, "uniform"));
  const double budget = options.budget_mib;
  auto size_at = [&](int b) {
    return model_size_mib(space, std::vector<int>(space.units.size(), b));
  };
  int bits = space.max_bits;
  while (size_at(bits) > budget) --bits;  // stops at min_bits: the budget is feasible

  UniformAllocation u;
  u.bits = bits;
  u.allocation = make_allocation(space, std::vector<int>(space.units.size(), bits), options);
  const double size = u.allocation.size_mib;
  if (bits == space.max_bits) {
    u.summary = absl::StrFormat(
        "every searched layer at the largest bit-width, %d: %.4f MiB (budget %.4f MiB)", bits, size,
        budget);
  } else if (size == budget) {
    u.summary = absl::StrFormat(
        "the budget %.4f MiB is the size with every searched layer at %d bits", budget, bits);
  } else {
    u.next_size_mib = size_at(bits + 1);
    u.summary = absl::StrFormat(
        "the budget %.4f MiB lies between the uniform %d-bit size %.4f MiB and the %d-bit size "
        "%.4f MiB: %d bits, %.4f MiB under the budget",
        budget, bits, size, bits + 1, u.next_size_mib, bits, budget - size);
  }
  return u;
}

absl::StatusOr<BitAllocation> random_allocation(const SearchSpace& space,
                                                const AllocationOptions& options, uint64_t seed) {
  OMPQ_RETURN_IF_ERROR(check_baseline_options(space, options, "random"));
  const double budget = options.budget_mib;
  Draws draws(seed);
  std::vector<int> bits;
  const size_t levels = static_cast<size_t>(space.max_bits - space.min_bits + 1);
  for (size_t i = 0; i < space.units.size(); ++i) {
    bits.push_back(space.min_bits + static_cast<int>(draws.below(levels)));
  }
  // Sizes come from model_size_mib itself, so that "within the budget" means what the reports
  // and check_allocation_options compute, to the last bit of the double.
  while (model_size_mib(space, bits) > budget) {
    step_random_unit(
        bits, -1, [&](size_t i) { return bits[i] > space.min_bits; }, draws);
  }
  auto fits_one_more = [&](size_t i) {
    if (bits[i] == space.max_bits) return false;
    std::vector<int> raised = bits;
    ++raised[i];
    return model_size_mib(space, raised) <= budget;
  };
  while (step_random_unit(bits, +1, fits_one_more, draws)) {
  }
  return make_allocation(space, std::move(bits), options);
}

}  // namespace ompq::solver
