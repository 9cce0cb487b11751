#include "solver/search/bit_allocation.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_format.h"
#include "core/error.h"
#include "solver/search/linear_program.h"
#include "solver/search/rounding.h"
#include "solver/space/cost_model.h"

namespace ompq::solver {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;
// lp_solve's answers are exact to about its feasibility tolerance; closer than this to a bound is
// the bound.
constexpr double kBoundSnap = 1e-9;
// An integer solution's size may exceed the budget by rounding in the last bits of a double, not
// by a byte (1 byte = 9.5e-7 MiB).
constexpr double kSizeSlackMib = 1e-9;

void check_relaxed(const RelaxedProblem& p, const char* op) {
  OMPQ_CHECK(!p.sizes.empty(), op, ": no layers");
  OMPQ_CHECK(0 < p.lower && p.lower <= p.upper, op, ": bounds [", p.lower, ", ", p.upper,
             "] (expected 0 < lower <= upper)");
  double min_size = 0.0;
  for (size_t i = 0; i < p.sizes.size(); ++i) {
    OMPQ_CHECK(std::isfinite(p.sizes[i]) && p.sizes[i] > 0, op, ": sizes[", i, "] = ", p.sizes[i],
               " (expected finite and > 0)");
    min_size += p.sizes[i] * p.lower;
  }
  OMPQ_CHECK(p.budget >= min_size, op, ": budget ", p.budget, " is below the smallest size ",
             min_size, " (every layer at its lower bound)");
}

std::vector<double> scaled(const std::vector<double>& v, double factor) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = v[i] * factor;
  return out;
}

absl::Status check_weights(const std::vector<double>& log_weights, size_t units) {
  if (log_weights.size() != units) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bit allocation: %d layer weights for %d searched layers", log_weights.size(), units));
  }
  for (size_t i = 0; i < units; ++i) {
    if (!std::isfinite(log_weights[i])) {
      return absl::InvalidArgumentError(
          absl::StrFormat("bit allocation: log weight %d is %g", i, log_weights[i]));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int>> round_bits(const std::vector<double>& relaxed_bits,
                                            const std::vector<double>& sizes, Rounding rounding) {
  if (rounding == Rounding::kDfs) return round_dfs(relaxed_bits, sizes);
  return round_half_to_even(relaxed_bits);
}

// The size and BOPs constraints of the integer programs: what one bit of each searched unit costs
// in MiB and in G BOPs, and what the fixed units (QAT's stem and classifier) leave of each budget.
struct BudgetRows {
  std::vector<double> mib_per_bit, bops_per_bit;
  double size_left = 0.0, bops_left = 0.0;
};

BudgetRows budget_rows(const SearchSpace& space, const AllocationOptions& o, double fixed_size) {
  BudgetRows rows;
  double fixed_bops = 0.0;
  for (const SearchUnit& u : space.fixed) {
    fixed_bops += static_cast<double>(o.reference_bops ? u.reference_flops : u.flops) *
                  SearchSpace::kFixedBits * SearchSpace::kFixedBits / 1e9;
  }
  for (const SearchUnit& u : space.units) {
    rows.mib_per_bit.push_back(u.params / kMiB / 8);
    rows.bops_per_bit.push_back(
        static_cast<double>(o.reference_bops ? u.reference_flops : u.flops) * o.act_bits / 1e9);
  }
  rows.size_left = o.budget_mib - fixed_size;
  rows.bops_left = o.bops_budget_g - fixed_bops;
  return rows;
}

absl::StatusOr<std::vector<int>> solve_integer(const SearchSpace& space,
                                               const std::vector<double>& log_weights,
                                               const AllocationOptions& o, double fixed_size) {
  const size_t n = space.units.size();
  const double max_log_weight = *std::max_element(log_weights.begin(), log_weights.end());
  LinearProgram program;
  program.integer = true;
  program.lower.assign(n, space.min_bits);
  program.upper.assign(n, space.max_bits);
  for (size_t i = 0; i < n; ++i) {
    program.objective.push_back(std::exp(log_weights[i] - max_log_weight));
  }
  const BudgetRows budget = budget_rows(space, o, fixed_size);
  program.rows.push_back(budget.mib_per_bit);
  program.rhs.push_back(budget.size_left);
  if (o.bops_budget_g > 0) {
    program.rows.push_back(budget.bops_per_bit);
    program.rhs.push_back(budget.bops_left);
  }
  OMPQ_ASSIGN_OR_RETURN(std::vector<double> solution, solve_linear_program(program));
  std::vector<int> bits(n);
  for (size_t i = 0; i < n; ++i) bits[i] = static_cast<int>(std::lround(solution[i]));
  return bits;
}

absl::Status check_costs(const SearchSpace& space, const std::vector<std::vector<double>>& costs) {
  const size_t levels = static_cast<size_t>(space.max_bits - space.min_bits + 1);
  if (costs.size() != space.units.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bit allocation: costs for %d units, the search space has %d", costs.size(),
                        space.units.size()));
  }
  for (size_t i = 0; i < costs.size(); ++i) {
    if (costs[i].size() != levels) {
      return absl::InvalidArgumentError(
          absl::StrFormat("bit allocation: unit %d (%s) has %d costs (expected one per bit-width "
                          "%d..%d)",
                          i, space.units[i].name, costs[i].size(), space.min_bits, space.max_bits));
    }
    for (size_t k = 0; k < levels; ++k) {
      if (!std::isfinite(costs[i][k])) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "bit allocation: unit %d (%s) at %d bits costs %g (expected finite)", i,
            space.units[i].name, space.min_bits + static_cast<int>(k), costs[i][k]));
      }
    }
  }
  return absl::OkStatus();
}

// One binary variable per (unit, bit-width), exactly one chosen per unit; x_{i,k} is variable
// i * levels + k.
absl::StatusOr<std::vector<int>> solve_integer_by_cost(
    const SearchSpace& space, const std::vector<std::vector<double>>& costs,
    const AllocationOptions& o, double fixed_size) {
  const size_t n = space.units.size();
  const size_t levels = static_cast<size_t>(space.max_bits - space.min_bits + 1);
  // Scaled to a largest |cost| of 1 so that lp_solve's tolerances are relative to the costs.
  double largest = 0.0;
  for (const auto& unit : costs) {
    for (double c : unit) largest = std::max(largest, std::abs(c));
  }
  const double scale = largest > 0 ? 1.0 / largest : 1.0;
  LinearProgram program;
  program.integer = true;
  program.lower.assign(n * levels, 0.0);
  program.upper.assign(n * levels, 1.0);
  const BudgetRows budget = budget_rows(space, o, fixed_size);
  std::vector<double> size_row(n * levels), bops_row(n * levels);
  for (size_t i = 0; i < n; ++i) {
    std::vector<double> choose_one(n * levels, 0.0);
    for (size_t k = 0; k < levels; ++k) {
      const size_t var = i * levels + k;
      const int bits = space.min_bits + static_cast<int>(k);
      program.objective.push_back(-costs[i][k] * scale);  // maximize -cost
      size_row[var] = budget.mib_per_bit[i] * bits;
      bops_row[var] = budget.bops_per_bit[i] * bits;
      choose_one[var] = 1.0;
    }
    program.rows.push_back(choose_one);
    program.rhs.push_back(1.0);
    for (double& v : choose_one) v = -v;
    program.rows.push_back(choose_one);
    program.rhs.push_back(-1.0);
  }
  program.rows.push_back(size_row);
  program.rhs.push_back(budget.size_left);
  if (o.bops_budget_g > 0) {
    program.rows.push_back(bops_row);
    program.rhs.push_back(budget.bops_left);
  }
  OMPQ_ASSIGN_OR_RETURN(std::vector<double> solution, solve_linear_program(program));
  std::vector<int> bits(n);
  for (size_t i = 0; i < n; ++i) {
    const auto first = solution.begin() + static_cast<std::ptrdiff_t>(i * levels);
    const auto chosen = std::max_element(first, first + static_cast<std::ptrdiff_t>(levels));
    bits[i] = space.min_bits + static_cast<int>(chosen - first);
  }
  return bits;
}

}  // namespace

absl::Status check_allocation_options(const SearchSpace& space, const AllocationOptions& o) {
  if (space.units.empty()) return absl::InvalidArgumentError("bit allocation: no searched layers");
  if (!(std::isfinite(o.budget_mib) && o.budget_mib > 0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("model size budget %g MiB (expected > 0)", o.budget_mib));
  }
  if (o.act_bits < 1 || o.act_bits > 32) {
    return absl::InvalidArgumentError(
        absl::StrFormat("activation bits %d (expected 1..32)", o.act_bits));
  }
  if (!(std::isfinite(o.bops_budget_g) && o.bops_budget_g >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("BOPs budget %g G (expected >= 0; 0: none)", o.bops_budget_g));
  }
  if (o.bops_budget_g > 0 && o.solver != SolverKind::kIlp) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "a BOPs budget needs the ilp solver (the %s solver has the size budget only)",
        solver_name(o.solver)));
  }
  const Range size = size_range_mib(space);
  if (o.budget_mib < size.min || o.budget_mib > size.max) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "model size budget %.6f MiB is outside the feasible range [%.6f, %.6f] MiB for %s "
        "(%d searched layers at %d..%d bits%s)",
        o.budget_mib, size.min, size.max, quant_mode_name(space.mode), space.units.size(),
        space.min_bits, space.max_bits,
        space.fixed.empty() ? "" : ", stem and classifier at 8 bits"));
  }
  if (o.bops_budget_g > 0) {
    const Range bops = bops_range_g(space, o.act_bits, o.reference_bops);
    if (o.bops_budget_g < bops.min) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "BOPs budget %.4f G is below the smallest BOPs %.4f G (all %d searched layers at %d "
          "bits, activations at %d bits; the largest is %.4f G)",
          o.bops_budget_g, bops.min, space.units.size(), space.min_bits, o.act_bits, bops.max));
    }
  }
  return absl::OkStatus();
}

const char* solver_name(SolverKind solver) {
  switch (solver) {
    case SolverKind::kLp:
      return "lp";
    case SolverKind::kIlp:
      return "ilp";
    case SolverKind::kProjection:
      return "projection";
  }
  return "?";
}

const char* rounding_name(Rounding rounding) {
  return rounding == Rounding::kDfs ? "dfs" : "nearest";
}

Rounding reference_rounding(const std::string& model_name) {
  return model_name == "resnet18" ? Rounding::kDfs : Rounding::kHalfToEven;
}

absl::StatusOr<std::vector<double>> solve_relaxed_lp(const RelaxedProblem& problem,
                                                     const std::vector<double>& log_weights) {
  check_relaxed(problem, "solve_relaxed_lp");
  const size_t n = problem.sizes.size();
  OMPQ_RETURN_IF_ERROR(check_weights(log_weights, n));
  std::vector<double> log_ratio(n);
  for (size_t i = 0; i < n; ++i) log_ratio[i] = log_weights[i] - std::log(problem.sizes[i]);
  const double min_log_ratio = *std::min_element(log_ratio.begin(), log_ratio.end());
  LinearProgram program;
  program.lower.assign(n, problem.lower);
  program.upper.assign(n, problem.upper);
  for (size_t i = 0; i < n; ++i) {
    program.objective.push_back(problem.sizes[i] * (log_ratio[i] - min_log_ratio + 1));
  }
  program.rows = {problem.sizes};
  program.rhs = {problem.budget};
  OMPQ_ASSIGN_OR_RETURN(std::vector<double> x, solve_linear_program(program));

  std::vector<size_t> between;
  for (size_t i = 0; i < n; ++i) {
    if (std::abs(x[i] - problem.lower) <= kBoundSnap) {
      x[i] = problem.lower;
    } else if (std::abs(x[i] - problem.upper) <= kBoundSnap) {
      x[i] = problem.upper;
    } else {
      between.push_back(i);
    }
  }
  if (between.size() == 1) {
    const size_t f = between[0];
    double others = 0.0;
    for (size_t i = 0; i < n; ++i) others += i == f ? 0.0 : problem.sizes[i] * x[i];
    x[f] = std::clamp((problem.budget - others) / problem.sizes[f], problem.lower, problem.upper);
  }
  return x;
}

Projection project_onto_budget(const RelaxedProblem& problem) {
  check_relaxed(problem, "project_onto_budget");
  const std::vector<double>& p = problem.sizes;
  const size_t n = p.size();
  const double lb = problem.lower, ub = problem.upper;
  Projection result;
  // f(lambda) = sum_i p_i * max(lb, ub - lambda p_i) falls piecewise linearly; layer i reaches lb
  // at lambda = (ub - lb) / p_i. Walk the pieces in that order until f meets the budget.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
  std::vector<bool> at_lower(n, false);
  for (size_t k = 0; k <= n; ++k) {
    // Layers order[0..k) sit at lb; the others are free. Sums in index order, fresh each time
    // (subtracting saturated layers from running sums would cancel digits).
    double fixed = 0.0, free_at_upper = 0.0, free_squares = 0.0;
    for (size_t i = 0; i < n; ++i) {
      if (at_lower[i]) {
        fixed += p[i] * lb;
      } else {
        free_at_upper += p[i] * ub;
        free_squares += p[i] * p[i];
      }
    }
    if (k == 0 && free_at_upper <= problem.budget) break;  // everything fits at ub: lambda = 0
    if (k == n) {  // every layer at lb: the budget is exactly the minimum
      result.lambda = (ub - lb) / p[order[n - 1]];
      break;
    }
    const double lambda = (free_at_upper + fixed - problem.budget) / free_squares;
    if (lambda <= (ub - lb) / p[order[k]]) {
      result.lambda = lambda;
      break;
    }
    at_lower[order[k]] = true;
  }
  result.x.resize(n);
  for (size_t i = 0; i < n; ++i) result.x[i] = std::max(lb, ub - result.lambda * p[i]);
  return result;
}

absl::StatusOr<BitAllocation> allocate_bits(const SearchSpace& space,
                                            const std::vector<double>& log_weights,
                                            const AllocationOptions& options) {
  OMPQ_RETURN_IF_ERROR(check_allocation_options(space, options));
  if (options.solver != SolverKind::kProjection) {
    OMPQ_RETURN_IF_ERROR(check_weights(log_weights, space.units.size()));
  }
  double fixed_size = 0.0;
  for (const SearchUnit& u : space.fixed) fixed_size += u.params / kMiB;
  RelaxedProblem problem;
  for (const SearchUnit& u : space.units) problem.sizes.push_back(u.params / kMiB);
  problem.lower = space.min_bits / 8.0;
  problem.upper = space.max_bits / 8.0;
  problem.budget = options.budget_mib - fixed_size;

  BitAllocation allocation;
  for (const SearchUnit& u : space.units) allocation.units.push_back(u.name);
  if (options.solver == SolverKind::kIlp) {
    OMPQ_ASSIGN_OR_RETURN(allocation.bits, solve_integer(space, log_weights, options, fixed_size));
  } else {
    std::vector<double> x;
    if (options.solver == SolverKind::kLp) {
      OMPQ_ASSIGN_OR_RETURN(x, solve_relaxed_lp(problem, log_weights));
    } else {
      x = project_onto_budget(problem).x;
    }
    allocation.relaxed_bits = scaled(x, 8.0);
    OMPQ_ASSIGN_OR_RETURN(allocation.bits,
                          round_bits(allocation.relaxed_bits, problem.sizes, options.rounding));
  }
  allocation.size_mib = model_size_mib(space, allocation.bits);
  allocation.bops_g = bops_g(space, allocation.bits, options.act_bits, options.reference_bops);
  if (options.solver == SolverKind::kIlp) {
    OMPQ_CHECK(allocation.size_mib <= options.budget_mib + kSizeSlackMib,
               "bit allocation: lp_solve's integer solution has size ", allocation.size_mib,
               " MiB, over the budget of ", options.budget_mib, " MiB");
  }
  return allocation;
}

absl::StatusOr<BitAllocation> allocate_bits_by_cost(const SearchSpace& space,
                                                    const std::vector<std::vector<double>>& costs,
                                                    const AllocationOptions& options) {
  OMPQ_RETURN_IF_ERROR(check_allocation_options(space, options));
  if (options.solver != SolverKind::kIlp) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bit allocation by cost is an integer program (solver ilp, not %s)",
                        solver_name(options.solver)));
  }
  OMPQ_RETURN_IF_ERROR(check_costs(space, costs));
  double fixed_size = 0.0;
  for (const SearchUnit& u : space.fixed) fixed_size += u.params / kMiB;
  BitAllocation allocation;
  for (const SearchUnit& u : space.units) allocation.units.push_back(u.name);
  OMPQ_ASSIGN_OR_RETURN(allocation.bits, solve_integer_by_cost(space, costs, options, fixed_size));
  allocation.size_mib = model_size_mib(space, allocation.bits);
  allocation.bops_g = bops_g(space, allocation.bits, options.act_bits, options.reference_bops);
  OMPQ_CHECK(allocation.size_mib <= options.budget_mib + kSizeSlackMib,
             "bit allocation: lp_solve's integer solution has size ", allocation.size_mib,
             " MiB, over the budget of ", options.budget_mib, " MiB");
  return allocation;
}

}  // namespace ompq::solver
