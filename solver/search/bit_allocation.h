// Weight bit-widths from layer importance under a model-size (and optionally a BOPs) budget:
// the OMPQ linear program (docs/METHOD.md 2.4, 2.5), its integer version, and the reference code's
// size-only projection, followed by the reference's rounding (docs/METHOD.md 2.6).
//
// Solvers:
//  - lp: the exact LP of docs/METHOD.md 2.4,
//      maximize sum_i w_i x_i  s.t.  sum_i p_i x_i <= S,  lb <= x_i <= ub,
//    with x_i = bits_i / 8, p_i = params_i / 2^20, S = budget - (QAT) stem and classifier at 8
//    bits, and w_i the layer weights of orm.h; then rounding. Its optimum is the
//    fractional-knapsack vertex (layers raised to ub in decreasing w_i / p_i, at most one layer in
//    between) and depends on the weights only through that order. lp_solve therefore gets the
//    same LP with the objective w_i replaced by p_i * (log(w_i / p_i) - min_k log(w_k / p_k) + 1),
//    which has the same order, the same optimal vertex and coefficients of order 1 whatever the
//    range of w (raw w can span hundreds of decades, far below lp_solve's tolerances). The
//    solver's tolerance noise is removed: values within 1e-9 of a bound are put on it, and the
//    one value in between takes exactly the budget left (see docs/METHOD.md 2.5 on the reference's
//    noise).
//  - ilp: integer bits_i in [min_bits, max_bits] directly, maximizing sum_i w_i bits_i with w
//    scaled to a maximum of 1 (weights below ~1e-11 of the largest act as 0 for lp_solve); size
//    never over the budget, and BOPs under `bops_budget_g` when that is set.
//  - projection: the reference's regime A (docs/METHOD.md 2.5), what its SLSQP call returns when
//  the
//    objective is negligible: the Euclidean projection of x = ub onto the budget,
//    x_i = clip(ub - lambda * p_i, lb, ub) with the smallest lambda >= 0 that fits; then rounding.
//    Needs no weights (no data). The released PTQ configurations are exactly these
//    (docs/METHOD.md 2.11).
// Rounding (lp and projection): DFS (the reference's, for ResNet-18) or half-to-even (numpy's,
// for every other model; it may exceed the budget).
//
// A budget outside [size with all bits at min_bits, at max_bits] is an error that states the
// range; so is a BOPs budget below the BOPs of all min_bits.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "solver/space/search_space.h"

namespace ompq::solver {

enum class SolverKind { kLp, kIlp, kProjection };
enum class Rounding { kDfs, kHalfToEven };

const char* solver_name(SolverKind solver);
const char* rounding_name(Rounding rounding);
// The reference's choice: DFS for "resnet18", half-to-even for every other model.
Rounding reference_rounding(const std::string& model_name);

struct AllocationOptions {
  SolverKind solver = SolverKind::kLp;
  Rounding rounding = Rounding::kHalfToEven;  // lp and projection
  double budget_mib = 0.0;
  double bops_budget_g = 0.0;  // ilp only; 0: no BOPs constraint
  int act_bits = 8;            // for the BOPs budget and the reported BOPs
  bool reference_bops = false;
};

struct BitAllocation {
  std::vector<std::string> units;    // SearchSpace::units names
  std::vector<int> bits;             // one per unit
  std::vector<double> relaxed_bits;  // lp and projection: 8 * x before rounding; ilp: empty
  double size_mib = 0.0;
  double bops_g = 0.0;
};

// The checks allocate_bits starts with: budget in the feasible range, act_bits, BOPs budget.
absl::Status check_allocation_options(const SearchSpace& space, const AllocationOptions& options);

// `log_weights`: log w_i per unit (orm.h log_layer_weights), needed by lp and ilp; projection
// ignores it (pass {}).
absl::StatusOr<BitAllocation> allocate_bits(const SearchSpace& space,
                                            const std::vector<double>& log_weights,
                                            const AllocationOptions& options);

// The integer program with a cost per (unit, bit-width) instead of one importance per unit:
//   minimize sum_i costs[i][b_i - min_bits]  s.t. the size (and BOPs) budget, b_i in [min, max],
// as one binary variable per (unit, bit-width) with exactly one chosen per unit. The Hessian-trace
// baseline's (hessian.h); `options.solver` must be ilp. Costs must be finite, one per bit-width.
absl::StatusOr<BitAllocation> allocate_bits_by_cost(const SearchSpace& space,
                                                    const std::vector<std::vector<double>>& costs,
                                                    const AllocationOptions& options);

// The continuous problem in the reference's variables (docs/METHOD.md 2.4): x in [lower, upper]^L,
// sum_i sizes_i x_i <= budget.
struct RelaxedProblem {
  std::vector<double> sizes;
  double lower = 0.5;
  double upper = 1.0;
  double budget = 0.0;
};

// The LP optimum (see lp above). The budget must be feasible.
absl::StatusOr<std::vector<double>> solve_relaxed_lp(const RelaxedProblem& problem,
                                                     const std::vector<double>& log_weights);

struct Projection {
  std::vector<double> x;
  double lambda = 0.0;
};
// The projection of x = upper onto the budget (see projection above). The budget must be feasible.
Projection project_onto_budget(const RelaxedProblem& problem);

}  // namespace ompq::solver
