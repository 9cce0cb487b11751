// mean, standard deviation, average ranks, the normal quantile and Spearman's rho with its
// Fisher-z interval against values computed independently with SciPy 1.17.1 / NumPy
// (scipy.stats.rankdata, scipy.stats.spearmanr, scipy.stats.norm.ppf, numpy.std(ddof=1); the
// interval as tanh(atanh(rho) -+ norm.ppf((1 + c) / 2) * sqrt((1 + rho^2 / 2) / (n - 3)))), and
// the errors for bad inputs.
#include "solver/report/statistics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"

namespace ompq::solver {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The message of the ompq::Error that `f` throws, or "" when it does not throw.
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Statistics, MeanAndStandardDeviation) {
  const std::vector<double> v = {2.5, 3.5, 1.0, 7.25, 4.0};
  EXPECT_DOUBLE_EQ(mean(v), 3.65);
  EXPECT_NEAR(standard_deviation(v), 2.3157072353818822, 1e-15);  // numpy.std(v, ddof=1)
  EXPECT_DOUBLE_EQ(standard_deviation({4, 4, 4}), 0.0);
  EXPECT_THAT(error_of([] { mean({}); }), HasSubstr("mean: no values"));
  EXPECT_THAT(error_of([] { standard_deviation({1.0}); }),
              HasSubstr("standard_deviation: 1 values; the sample standard deviation needs at "
                        "least 2"));
  EXPECT_THAT(error_of([] { mean({1.0, NAN}); }), HasSubstr("mean: values[1] = nan is not finite"));
}

TEST(Statistics, TiesShareTheAverageRank) {
  EXPECT_THAT(average_ranks({10, 20, 20, 5}), ElementsAre(2, 3.5, 3.5, 1));
  // scipy.stats.rankdata
  EXPECT_THAT(average_ranks({1.5, 2.0, 2.0, 3.7, 4.1, 0.2, 5.5, 5.5, 5.5, 1.0}),
              ElementsAre(3, 4.5, 4.5, 6, 7, 1, 9, 9, 9, 2));
  EXPECT_TRUE(average_ranks({}).empty());
}

TEST(Statistics, NormalQuantile) {
  // scipy.stats.norm.ppf
  for (const auto& [p, expected] :
       std::vector<std::pair<double, double>>{{0.975, 1.959963984540054},
                                              {0.95, 1.6448536269514722},
                                              {0.5, 0.0},
                                              {0.001, -3.0902323061678132},
                                              {1e-10, -6.3613409024040557},
                                              {0.9999, 3.7190164854557088}}) {
    EXPECT_NEAR(normal_quantile(p), expected, 1e-13 * std::max(1.0, std::abs(expected))) << p;
  }
  EXPECT_THAT(error_of([] { normal_quantile(1.0); }),
              HasSubstr("normal_quantile: p = 1 must lie in (0, 1)"));
}

TEST(Statistics, SpearmanMatchesScipyWithTies) {
  const std::vector<double> x = {1.5, 2.0, 2.0, 3.7, 4.1, 0.2, 5.5, 5.5, 5.5, 1.0};
  const std::vector<double> y = {10, 12, 9, 15, 14, 8, 20, 18, 19, 11};
  const RankCorrelation r = spearman(x, y);
  EXPECT_EQ(r.n, 10u);
  EXPECT_NEAR(r.rho, 0.910877033247062, 1e-14);
  EXPECT_NEAR(r.lower, 0.572673351979760, 1e-12);
  EXPECT_NEAR(r.upper, 0.984116017368713, 1e-12);
  const RankCorrelation r90 = spearman(x, y, 0.90);
  EXPECT_NEAR(r90.lower, 0.660194732145665, 1e-12);
  EXPECT_NEAR(r90.upper, 0.978967956324430, 1e-12);
  EXPECT_DOUBLE_EQ(r90.rho, r.rho);

  // Ties in both samples, a weak correlation whose interval spans 0.
  const RankCorrelation weak = spearman({3, 1, 4, 1, 5, 9, 2, 6}, {2, 7, 1, 8, 2, 8, 1, 8});
  EXPECT_NEAR(weak.rho, 0.198853681209925, 1e-14);
  EXPECT_NEAR(weak.lower, -0.593858937784991, 1e-12);
  EXPECT_NEAR(weak.upper, 0.795664622183862, 1e-12);
}

TEST(Statistics, SpearmanOfAPerfectOrderIsOneWithAPointInterval) {
  // Ranks only: any increasing transform of x gives rho = 1; a decreasing one -1.
  const std::vector<double> x = {0.1, 0.5, 2, 30, 400};
  const RankCorrelation up = spearman(x, {1, 2, 3, 4, 5});
  EXPECT_DOUBLE_EQ(up.rho, 1.0);
  EXPECT_DOUBLE_EQ(up.lower, 1.0);
  EXPECT_DOUBLE_EQ(up.upper, 1.0);
  const RankCorrelation down = spearman(x, {-1, -8, -27, -64, -125});
  EXPECT_DOUBLE_EQ(down.rho, -1.0);
  EXPECT_DOUBLE_EQ(down.lower, -1.0);
}

TEST(Statistics, SpearmanRefusesBadInputs) {
  EXPECT_THAT(error_of([] {
                spearman({1, 2, 3, 4}, {1, 2, 3});
              }),
              HasSubstr("spearman: 4 x values but 3 y values; expected pairs"));
  EXPECT_THAT(error_of([] { spearman({}, {}); }),
              HasSubstr("spearman: 0 pairs; the confidence interval needs at least 4"));
  EXPECT_THAT(error_of([] { spearman({1, 2, 3}, {3, 2, 1}); }), HasSubstr("3 pairs"));
  EXPECT_THAT(error_of([] {
                spearman({1, 2, 3, 4}, {5, 5, 5, 5});
              }),
              HasSubstr("spearman: y is constant (all 4 values equal)"));
  EXPECT_THAT(error_of([] {
                spearman({1, 2, INFINITY, 4}, {1, 2, 3, 4});
              }),
              HasSubstr("spearman: x[2] = inf is not finite"));
  EXPECT_THAT(error_of([] {
                spearman({1, 2, 3, 4}, {1, 2, 3, 4}, 1.0);
              }),
              HasSubstr("spearman: confidence 1 must lie in (0, 1)"));
}

}  // namespace
}  // namespace ompq::solver
