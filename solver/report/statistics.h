// Summary statistics for experiment reports: mean, sample standard deviation, and Spearman's rank
// correlation with a confidence interval.
//
// The interval is Fisher's z-transform with Bonett and Wright's variance for Spearman's rho
// (Psychometrika 65, 2000): z = atanh(rho), se = sqrt((1 + rho^2 / 2) / (n - 3)), bounds
// tanh(z -+ q se) with q the normal quantile of (1 + confidence) / 2. Chosen over a bootstrap
// because it is a closed form: the same numbers on every machine and for every reader who
// recomputes them by hand, no resampling count or seed to report. It is approximate: it assumes
// the ranks behave like a bivariate normal sample, and its coverage degrades as |rho| nears 1 with
// few points.
//
// Bad inputs (no values, x and y of different lengths, a non-finite value, a constant sample
// whose ranks do not vary, too few values for the interval) throw ompq::Error naming the function
// and the counts.
#pragma once

#include <cstddef>
#include <vector>

namespace ompq::solver {

double mean(const std::vector<double>& values);  // one value at least

// With Bessel's correction (divides by n - 1): two values at least.
double standard_deviation(const std::vector<double>& values);

// 1-based ranks, tied values sharing the average of the ranks they span: {10, 20, 20, 5} ->
// {2, 3.5, 3.5, 1}.
std::vector<double> average_ranks(const std::vector<double>& values);

// The p-quantile of the standard normal distribution, p in (0, 1), to about 1e-15 relative.
double normal_quantile(double p);

struct RankCorrelation {
  double rho = 0.0;                 // Spearman's: Pearson's correlation of the average ranks
  double lower = 0.0, upper = 0.0;  // the confidence interval
  double confidence = 0.95;
  size_t n = 0;
};

// Spearman's rho of paired samples and its Fisher-z interval (see above): at least 4 pairs (the
// interval's n - 3), confidence in (0, 1).
RankCorrelation spearman(const std::vector<double>& x, const std::vector<double>& y,
                         double confidence = 0.95);

}  // namespace ompq::solver
