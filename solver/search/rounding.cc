#include "solver/search/rounding.h"

#include <cfenv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/error.h"

namespace ompq::solver {
namespace {

void check_bits(const std::vector<double>& bits, const char* op) {
  for (size_t i = 0; i < bits.size(); ++i) {
    OMPQ_CHECK(std::isfinite(bits[i]) && bits[i] >= 0, op, ": bits[", i, "] = ", bits[i],
               " (expected finite and >= 0)");
  }
}

bool is_integer(double v) { return std::floor(v) == v; }

// DFS_bit over the layers in the reference's order (already reversed by the caller).
class DfsRounding {
 public:
  DfsRounding(const std::vector<double>& values, const std::vector<double>& costs)
      : values_(values), costs_(costs) {
    for (size_t k = 0; k < values.size(); ++k) threshold_ += values[k] * costs[k];
    best_ = threshold_;
  }

  bool run() {
    visit(0, /*ceil=*/true, 0.0);
    if (!is_integer(values_[0])) visit(0, /*ceil=*/false, 0.0);
    return found_;
  }
  const std::vector<int>& best() const { return best_choice_; }

 private:
  void visit(size_t index, bool ceil, double cost) {
    const double v = ceil ? std::ceil(values_[index]) : std::floor(values_[index]);
    cost += v * costs_[index];
    if (cost > threshold_) return;
    choice_.push_back(static_cast<int>(v));
    if (index + 1 == values_.size()) {
      if (std::abs(cost - threshold_) < best_) {
        best_choice_ = choice_;
        best_ = std::abs(cost - threshold_);
        found_ = true;
      }
    } else {
      visit(index + 1, /*ceil=*/true, cost);
      if (!is_integer(values_[index + 1])) visit(index + 1, /*ceil=*/false, cost);
    }
    choice_.pop_back();
  }

  const std::vector<double>& values_;
  const std::vector<double>& costs_;
  double threshold_ = 0.0;  // the continuous cost
  double best_ = 0.0;       // distance of the best choice so far
  bool found_ = false;
  std::vector<int> choice_, best_choice_;
};

}  // namespace

std::vector<int> round_half_to_even(const std::vector<double>& bits) {
  check_bits(bits, "round_half_to_even");
  const int saved_mode = std::fegetround();
  std::fesetround(FE_TONEAREST);
  std::vector<int> rounded(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) rounded[i] = static_cast<int>(std::nearbyint(bits[i]));
  std::fesetround(saved_mode);
  return rounded;
}

absl::StatusOr<std::vector<int>> round_dfs(const std::vector<double>& bits,
                                           const std::vector<double>& costs) {
  check_bits(bits, "round_dfs");
  OMPQ_CHECK(bits.size() == costs.size() && !bits.empty(), "round_dfs: ", bits.size(),
             " bit-widths and ", costs.size(), " costs (expected the same non-zero number)");
  int fractional = 0;
  for (size_t i = 0; i < costs.size(); ++i) {
    OMPQ_CHECK(std::isfinite(costs[i]) && costs[i] > 0, "round_dfs: costs[", i, "] = ", costs[i],
               " (expected finite and > 0)");
    fractional += is_integer(bits[i]) ? 0 : 1;
  }
  if (fractional > kMaxDfsFractional) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DFS rounding: ", fractional, " layers have fractional bit-widths; the search visits 2^",
        fractional, " choices (at most 2^", kMaxDfsFractional,
        " supported): use half-to-even rounding"));
  }
  const std::vector<double> values(bits.rbegin(), bits.rend());
  const std::vector<double> reversed_costs(costs.rbegin(), costs.rend());
  DfsRounding dfs(values, reversed_costs);
  if (!dfs.run()) {
    return absl::InvalidArgumentError(
        "DFS rounding: no floor/ceil choice fits the continuous size (all bit-widths below 1?)");
  }
  return std::vector<int>(dfs.best().rbegin(), dfs.best().rend());
}

}  // namespace ompq::solver
