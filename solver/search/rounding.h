// Rounding continuous bit-widths to integers (docs/METHOD.md 2.6).
#pragma once

#include <vector>

#include "absl/status/statusor.h"

namespace ompq::solver {

// Each value to the nearest integer, halves to even (numpy.around: 2.5 -> 2, 3.5 -> 4). Ignores
// the budget: the rounded size may exceed the continuous one.
std::vector<int> round_half_to_even(const std::vector<double>& bits);

// The reference's DFS_bit, called as the reference calls it: among all per-layer floor/ceil
// choices whose cost sum_i b_i * costs_i does not exceed the continuous cost, the one closest to
// it. Ties go to the first found in the reference's search order: layers decided from the last to
// the first, ceil before floor. The sums run in that order in double, as in the reference, so that
// exact ties and the "does not exceed" test come out the same. Layers whose value is already an
// integer do not branch (the reference visits the same choice twice), so the cost is 2^k for k
// fractional values; more than kMaxDfsFractional of them is an error (use half-to-even).
inline constexpr int kMaxDfsFractional = 24;
absl::StatusOr<std::vector<int>> round_dfs(const std::vector<double>& bits,
                                           const std::vector<double>& costs);

}  // namespace ompq::solver
