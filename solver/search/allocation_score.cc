#include "solver/search/allocation_score.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace ompq::solver {

double log_lp_objective(const std::vector<double>& log_weights, const std::vector<int>& bits) {
  OMPQ_CHECK(log_weights.size() == bits.size(), "log_lp_objective: ", log_weights.size(),
             " unit weights but ", bits.size(), " bit-widths");
  OMPQ_CHECK(!bits.empty(), "log_lp_objective: no units");
  std::vector<double> terms;
  for (size_t i = 0; i < bits.size(); ++i) {
    OMPQ_CHECK(bits[i] >= 1, "log_lp_objective: unit ", i, " has ", bits[i],
               " bits; expected >= 1");
    terms.push_back(log_weights[i] + std::log(static_cast<double>(bits[i])));
  }
  const double largest = *std::max_element(terms.begin(), terms.end());
  OMPQ_CHECK(std::isfinite(largest), "log_lp_objective: the largest log weight term is ", largest,
             "; expected finite");
  double sum = 0.0;
  for (double t : terms) sum += std::exp(t - largest);
  return largest + std::log(sum);
}

double hessian_objective(const std::vector<std::vector<double>>& costs,
                         const std::vector<int>& bits, int min_bits) {
  OMPQ_CHECK(costs.size() == bits.size(), "hessian_objective: costs of ", costs.size(),
             " units but ", bits.size(), " bit-widths");
  double total = 0.0;
  for (size_t i = 0; i < bits.size(); ++i) {
    const int k = bits[i] - min_bits;
    OMPQ_CHECK(k >= 0 && static_cast<size_t>(k) < costs[i].size(), "hessian_objective: unit ", i,
               " at ", bits[i], " bits has no cost (costs for ", min_bits, "..",
               min_bits + static_cast<int>(costs[i].size()) - 1, " bits)");
    total += costs[i][k];
  }
  return total;
}

}  // namespace ompq::solver
