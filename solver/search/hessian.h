// The Hessian-trace baseline (HAWQ-V2/V3, docs/METHOD.md 7): each searched unit's sensitivity is
// the average Hessian trace of the loss w.r.t. its weights, Tr(H_ii) / n_i, estimated by
// Hutchinson's method; bits then minimize sum_i trace_i * ||Q_b(W_i) - W_i||^2 under the same size
// (and BOPs) budget as OMPQ, solved by the same integer program (allocate_bits_by_cost).
//
// Hutchinson: Tr(H_ii) = E[v_i^T (H v)_i] for Rademacher v (+-1, independent per element). One v
// covers every unit at once, as HAWQ does: the cross terms v_i^T H_ij v_j (i != j) have mean 0, so
// each iteration costs one Hessian-vector product for all units. The autograd has no double
// backward, so H v is a central difference of gradients: with unit i perturbed by e_i v_i,
//   (g(w + e v) - g(w - e v))_i / (2 e_i)  =  (H E v)_i / e_i + O(e^2),
// where e_i = kEpsilonScale * ||w_i|| / ||v_i|| (the step is that fraction of the unit's weight
// norm) and the ratio e_j / e_i of the cross terms leaves their mean at 0. Exact for a quadratic
// loss up to float rounding.
//
// Stopping rule (PyHessian's, per unit): after each iteration the running mean of every unit's
// estimate is compared with the previous one; the estimator stops when the largest relative change
// is below `tolerance` (after at least 2 iterations) or at `max_iterations`. Both are reported.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "layers/models/model.h"
#include "solver/search/bit_allocation.h"
#include "solver/space/search_space.h"

namespace ompq::solver {

struct HessianOptions {
  int max_iterations = 100;
  double tolerance = 1e-3;  // PyHessian's default
  uint64_t seed = 0;        // the Rademacher vectors: Philox words of this seed
};

struct HessianTraces {
  // Per unit: Tr(H_ii) / n_i, the running mean at the last iteration (may be negative where the
  // loss is locally non-convex).
  std::vector<double> average_trace;
  int iterations = 0;
  // The largest relative change of a unit's running mean at the last iteration.
  double relative_change = 0.0;
  bool converged = false;
  double seconds = 0.0;
};

// The step of the finite differences, as a fraction of each unit's weight norm.
inline constexpr double kEpsilonScale = 1e-3;

// The loss at the current parameter values, as a scalar that backward() differentiates.
using LossFn = std::function<Tensor()>;

// Hutchinson's estimate for each group of `units` (a unit: the tensors that share its bits; each
// a leaf that requires grad, f32). Their values are perturbed during the estimate and restored
// bit for bit; their gradients are dropped at the end.
absl::StatusOr<HessianTraces> hutchinson_traces(const std::vector<std::vector<Tensor>>& units,
                                                const LossFn& loss, const HessianOptions& options);

// The traces of the search space's units of `model` with the mean cross-entropy of `images`
// [N, C, H, W] (N >= 1) and `labels` (i64 [N]), batch norm in eval mode (the model's mode and
// weights come back unchanged).
absl::StatusOr<HessianTraces> unit_hessian_traces(nn::Model& model, const SearchSpace& space,
                                                  const Tensor& images, const Tensor& labels,
                                                  const HessianOptions& options);

// HAWQ-V3's cost of each unit at each bit-width: trace_i * ||Q_b(W_i) - W_i||^2 summed over the
// unit's layers, Q_b the project's weight quantizer of the search mode (PTQ: BRECQ's Lp-2.4 range,
// QAT: min/max, per output channel). [unit][bits - space.min_bits].
std::vector<std::vector<double>> quantization_costs(const nn::Model& model,
                                                    const SearchSpace& space,
                                                    const std::vector<double>& average_trace);

struct HessianSearchResult {
  HessianTraces traces;
  std::vector<std::vector<double>> costs;
  BitAllocation allocation;
  double hessian_s = 0.0;  // the traces
  double costs_s = 0.0;    // the quantization perturbations
  double solve_s = 0.0;    // the integer program
};

// Traces, costs and the integer program, timed. `options.solver` must be ilp.
absl::StatusOr<HessianSearchResult> hessian_search(nn::Model& model, const SearchSpace& space,
                                                   const Tensor& images, const Tensor& labels,
                                                   const HessianOptions& hessian,
                                                   const AllocationOptions& options);

}  // namespace ompq::solver
