// The correlation experiment's scoring (OMPQ's log objective and the Hessian objective of a bit
// config), its Spearman summary, and its output files: the CSV row by row, two standalone SVG
// scatter plots with one marker per configuration, the HTML page; the errors for a configuration
// of the wrong length, too few samples and a missing folder.
#include "solver/pipeline/correlation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_format.h"
#include "solver/search/orm.h"
#include "tests/temp_dir.h"
#include "tests/text_file.h"

namespace ompq::solver {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using ompq::testing::count_occurrences;
using ompq::testing::read_text;

proto::BitConfig bit_config(const std::vector<int>& bits) {
  proto::BitConfig config;
  for (int b : bits) config.add_layer()->set_bits(b);
  config.set_size_mib(0.5);
  config.set_bops_g(1.25);
  return config;
}

// docs/METHOD.md 2.4's example: w = [0.35157728, 0.36093038, 0.44932896] at beta = 1.
CorrelationInputs three_units() {
  CorrelationInputs inputs;
  inputs.log_weights = log_layer_weights(log_importance({1.1, 1.3, 0.8}, 1.0));
  inputs.hessian_costs = {{9, 4, 1}, {3, 2, 1}, {0.5, 0.25, 0.125}};
  inputs.min_bits = 2;
  return inputs;
}

TEST(Correlation, ScoresAConfigurationWithBothObjectives) {
  const absl::StatusOr<CorrelationSample> s =
      score_configuration(three_units(), 7, bit_config({4, 3, 2}), 81.5);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->allocation_seed, 7u);
  EXPECT_EQ(s->bits, (std::vector<int>{4, 3, 2}));
  EXPECT_DOUBLE_EQ(s->size_mib, 0.5);
  EXPECT_DOUBLE_EQ(s->top1, 81.5);
  EXPECT_NEAR(s->ompq_log_objective, std::log(0.35157728 * 4 + 0.36093038 * 3 + 0.44932896 * 2),
              1e-8);
  EXPECT_DOUBLE_EQ(s->hessian_objective, 1 + 2 + 0.5);

  const absl::StatusOr<CorrelationSample> short_config =
      score_configuration(three_units(), 3, bit_config({4, 3}), 80);
  EXPECT_THAT(short_config.status().message(),
              HasSubstr("the configuration of seed 3 has 2 layers, the search 3 units"));
  const absl::StatusOr<CorrelationSample> eight_bits =
      score_configuration(three_units(), 4, bit_config({4, 8, 2}), 80);
  EXPECT_THAT(eight_bits.status().message(), HasSubstr("unit 1 at 8 bits has no cost"));
}

std::vector<CorrelationSample> samples() {
  // OMPQ's objective ranks them exactly as top-1; the Hessian objective exactly reversed but for
  // one swap.
  std::vector<CorrelationSample> out;
  const double top1[] = {70, 72, 75, 76, 80, 81};
  const double hessian[] = {6, 5, 3, 4, 2, 1};
  for (int i = 0; i < 6; ++i) {
    CorrelationSample s;
    s.allocation_seed = static_cast<uint64_t>(i);
    s.bits = {2 + i % 3, 4, 3};
    s.size_mib = 0.078;
    s.top1 = top1[i];
    s.ompq_log_objective = 0.1 * i;
    s.hessian_objective = hessian[i];
    out.push_back(s);
  }
  return out;
}

TEST(Correlation, SummaryIsSpearmanOfEachScore) {
  const absl::StatusOr<CorrelationSummary> summary = summarize_correlation(samples());
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_DOUBLE_EQ(summary->ompq.rho, 1.0);
  // One adjacent swap among 6: rho = -(1 - 6 * 2 / (6 * 35)).
  EXPECT_NEAR(summary->hessian.rho, -(1 - 12.0 / 210), 1e-12);
  EXPECT_EQ(summary->hessian.n, 6u);
  EXPECT_LT(summary->hessian.lower, summary->hessian.rho);

  std::vector<CorrelationSample> three = samples();
  three.resize(3);
  EXPECT_EQ(summarize_correlation(three).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(summarize_correlation(three).status().message(), HasSubstr("3 pairs"));
}

TEST(Correlation, WritesCsvPlotsAndPage) {
  testing::ScopedTempDir temp;
  CorrelationReport report;
  report.model = "resnet20";
  report.dataset = "Fashion-MNIST";
  report.settings = "PTQ <short> & quick";
  report.samples = samples();
  const absl::StatusOr<CorrelationSummary> summary =
      write_correlation_report(report, temp.path().string());
  ASSERT_TRUE(summary.ok()) << summary.status();

  const std::string csv = read_text(temp.path() / "correlation.csv");
  EXPECT_EQ(csv.rfind("allocation_seed,size_mib,bops_g,top1,ompq_log_objective,"
                      "hessian_objective,bits\n",
                      0),
            0u);
  EXPECT_EQ(count_occurrences(csv, "\n"), 7u);
  EXPECT_THAT(csv, HasSubstr("\n2,0.078,0,75,0.20000000000000001,3,4 4 3\n"));

  for (const char* svg : {"correlation_ompq.svg", "correlation_hessian.svg"}) {
    const std::string text = read_text(temp.path() / svg);
    EXPECT_EQ(text.rfind("<?xml", 0), 0u) << svg;
    EXPECT_EQ(count_occurrences(text, "<circle"), 6u)
        << svg;  // one marker per configuration, no legend
    EXPECT_THAT(text, HasSubstr("<title>seed 2: bits 4 4 3, 0.0780 MiB, top-1 75.00%</title>"));
  }
  const std::string html = read_text(temp.path() / "correlation.html");
  EXPECT_EQ(count_occurrences(html, "<svg"), 2u);
  EXPECT_THAT(html, HasSubstr("PTQ &lt;short&gt; &amp; quick"));
  EXPECT_THAT(html, HasSubstr("<td>1.000 [1.000, 1.000]</td><td>6</td>"));
  EXPECT_THAT(html, HasSubstr(absl::StrFormat("<td>%.3f [", summary->hessian.rho)));
}

TEST(Correlation, MissingFolderIsNamed) {
  CorrelationReport report;
  report.samples = samples();
  const absl::StatusOr<CorrelationSummary> summary =
      write_correlation_report(report, "/nonexistent/ompq_correlation");
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(summary.status().message(), HasSubstr("'/nonexistent/ompq_correlation'"));
}

}  // namespace
}  // namespace ompq::solver
