#include "solver/report/statistics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace ompq::solver {
namespace {

void check_finite(const char* function, const char* name, const std::vector<double>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    OMPQ_CHECK(std::isfinite(values[i]), function, ": ", name, "[", i, "] = ", values[i],
               " is not finite");
  }
}

// Pearson's correlation; the caller has checked that neither sample is constant.
double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const double mx = mean(x), my = mean(y);
  double sxy = 0.0, sxx = 0.0, syy = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return std::clamp(sxy / std::sqrt(sxx * syy), -1.0, 1.0);
}

}  // namespace

double mean(const std::vector<double>& values) {
  OMPQ_CHECK(!values.empty(), "mean: no values");
  check_finite("mean", "values", values);
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

double standard_deviation(const std::vector<double>& values) {
  OMPQ_CHECK(values.size() >= 2, "standard_deviation: ", values.size(),
             " values; the sample standard deviation needs at least 2");
  const double m = mean(values);
  double squares = 0.0;
  for (double v : values) squares += (v - m) * (v - m);
  return std::sqrt(squares / static_cast<double>(values.size() - 1));
}

std::vector<double> average_ranks(const std::vector<double>& values) {
  check_finite("average_ranks", "values", values);
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  for (size_t start = 0; start < order.size();) {
    size_t end = start + 1;
    while (end < order.size() && values[order[end]] == values[order[start]]) ++end;
    // Positions start..end-1 hold equal values: each gets the mean of ranks start+1..end.
    const double rank = (static_cast<double>(start + 1) + static_cast<double>(end)) / 2.0;
    for (size_t k = start; k < end; ++k) ranks[order[k]] = rank;
    start = end;
  }
  return ranks;
}

double normal_quantile(double p) {
  OMPQ_CHECK(p > 0.0 && p < 1.0, "normal_quantile: p = ", p, " must lie in (0, 1)");
  // Acklam's rational approximation (relative error below 1.2e-9), then one Halley step on
  // Phi(x) - p, with Phi from erfc, which brings it to double precision.
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  double x;
  if (p < kLow || p > 1 - kLow) {
    const double q = std::sqrt(-2 * std::log(p < kLow ? p : 1 - p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    if (p > 1 - kLow) x = -x;
  } else {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  const double error = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = error * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

RankCorrelation spearman(const std::vector<double>& x, const std::vector<double>& y,
                         double confidence) {
  OMPQ_CHECK(x.size() == y.size(), "spearman: ", x.size(), " x values but ", y.size(),
             " y values; expected pairs");
  OMPQ_CHECK(x.size() >= 4, "spearman: ", x.size(),
             " pairs; the confidence interval needs at least 4");
  OMPQ_CHECK(confidence > 0.0 && confidence < 1.0, "spearman: confidence ", confidence,
             " must lie in (0, 1)");
  check_finite("spearman", "x", x);
  check_finite("spearman", "y", y);
  auto constant = [](const std::vector<double>& v) {
    return std::all_of(v.begin(), v.end(), [&](double e) { return e == v.front(); });
  };
  OMPQ_CHECK(!constant(x) && !constant(y), "spearman: ", constant(x) ? "x" : "y",
             " is constant (all ", x.size(), " values equal); the rank correlation is undefined");
  RankCorrelation r;
  r.n = x.size();
  r.confidence = confidence;
  r.rho = pearson(average_ranks(x), average_ranks(y));
  const double n = static_cast<double>(r.n);
  const double se = std::sqrt((1 + r.rho * r.rho / 2) / (n - 3));
  const double q = normal_quantile((1 + confidence) / 2);
  // atanh(+-1) is infinite and tanh brings it back to +-1: a perfect rank order has a point
  // interval.
  const double z = std::atanh(r.rho);
  r.lower = std::tanh(z - q * se);
  r.upper = std::tanh(z + q * se);
  return r;
}

}  // namespace ompq::solver
