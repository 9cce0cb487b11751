// The score each method's integer program gives one bit vector, for comparing configurations that
// no search produced (the correlation experiment, issue 16 item 3):
//  - OMPQ: the LP's objective sum_i w_i b_i (docs/METHOD.md 2.4; the ilp maximizes it), with w_i
//    the layer weights of orm.h log_layer_weights; higher is better;
//  - HAWQ-V3: the Hessian program's objective sum_i cost_i(b_i), cost_i(b) = trace_i x
//    ||Q_b(W_i) - W_i||^2 (hessian.h quantization_costs, docs/METHOD.md 7); lower is better.
#pragma once

#include <vector>

namespace ompq::solver {

// log(sum_i w_i b_i) from log w_i, by log-sum-exp: w spans hundreds of decades (orm.h), so the
// objective itself can underflow while its logarithm orders configurations exactly as it does.
// One weight and one bit-width (>= 1) per unit; throws ompq::Error otherwise.
double log_lp_objective(const std::vector<double>& log_weights, const std::vector<int>& bits);

// sum_i costs[i][bits_i - min_bits]. Throws ompq::Error when the counts differ or a bit-width
// has no cost.
double hessian_objective(const std::vector<std::vector<double>>& costs,
                         const std::vector<int>& bits, int min_bits);

}  // namespace ompq::solver
