// write_report: every field of report.json read back with nlohmann (NaN and Infinity as null),
// report.html with one inline SVG per chart, escaped names and no external resource, the atomic
// write (a failure leaves the old report whole), and the errors for a bad ORM matrix and for a
// folder that cannot be written.
#include "solver/report/report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "tests/temp_dir.h"
#include "tests/text_file.h"

namespace ompq::solver {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

using ompq::testing::count_occurrences;
using ompq::testing::read_text;

// A QAT-like report: stem and classifier fixed, three searched layers with their ORM matrix.
ExperimentReport sample_report() {
  ExperimentReport r;
  r.model = "resnet20";
  r.quant = "qat";
  r.solver = "lp";
  r.budget_mib = 0.2375;
  r.act_bits = 6;
  r.layers = {{"conv1", 8, 464, true, std::nullopt},
              {"layer1.0.conv1", 5, 2336, false, -1.25},
              {"layer1.0.conv2", 4, 2336, false, -740.5},
              {"layer2.0.conv2", 7, 9280, false, 0.0},
              {"fc", 8, 650, true, std::nullopt}};
  r.orm = {{1.0, 0.8125, 0.25}, {0.8125, 1.0, 0.5}, {0.25, 0.5, 1.0}};
  r.results = {{"fp32", 1.0703, 0.0, 91.25, 99.5}, {"OMPQ qat", 0.2371, 2.875, 90.5, 99.25}};
  r.timings = {{"pretrain", 120.5}, {"search", 1.75}};
  r.metrics = {{"pretrain", 0, 0.61, 78.5, 0.42, 85.0, 99.0},
               {"qat", 1, 0.33, 88.0, 0.3, 90.5, 99.25}};
  return r;
}

json read_json(const fs::path& dir) { return json::parse(read_text(dir / "report.json")); }

TEST(Report, JsonRoundTripsEveryField) {
  testing::ScopedTempDir temp;
  const fs::path& dir = temp.path();
  const ExperimentReport r = sample_report();
  ASSERT_TRUE(write_report(r, dir.string()).ok());
  const json j = read_json(dir);
  EXPECT_EQ(j.at("model"), "resnet20");
  EXPECT_EQ(j.at("quant"), "qat");
  EXPECT_EQ(j.at("solver"), "lp");
  EXPECT_EQ(j.at("budget_mib").get<double>(), 0.2375);
  EXPECT_EQ(j.at("act_bits").get<int>(), 6);

  ASSERT_EQ(j.at("layers").size(), r.layers.size());
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const json& l = j["layers"][i];
    SCOPED_TRACE(r.layers[i].name);
    EXPECT_EQ(l.at("name"), r.layers[i].name);
    EXPECT_EQ(l.at("bits").get<int>(), r.layers[i].bits);
    EXPECT_EQ(l.at("params").get<int64_t>(), r.layers[i].params);
    EXPECT_EQ(l.at("fixed").get<bool>(), r.layers[i].fixed);
    if (r.layers[i].log_theta) {
      EXPECT_EQ(l.at("log_theta").get<double>(), *r.layers[i].log_theta);
    } else {
      EXPECT_TRUE(l.at("log_theta").is_null());
    }
  }
  EXPECT_EQ(j.at("orm").get<std::vector<std::vector<double>>>(), r.orm);

  ASSERT_EQ(j.at("results").size(), 2u);
  for (size_t i = 0; i < r.results.size(); ++i) {
    const json& x = j["results"][i];
    EXPECT_EQ(x.at("label"), r.results[i].label);
    EXPECT_EQ(x.at("size_mib").get<double>(), r.results[i].size_mib);
    EXPECT_EQ(x.at("bops_g").get<double>(), r.results[i].bops_g);
    EXPECT_EQ(x.at("top1").get<double>(), r.results[i].top1);
    EXPECT_EQ(x.at("top5").get<double>(), r.results[i].top5);
  }
  ASSERT_EQ(j.at("timings").size(), 2u);
  EXPECT_EQ(j["timings"][0].at("stage"), "pretrain");
  EXPECT_EQ(j["timings"][0].at("seconds").get<double>(), 120.5);
  EXPECT_EQ(j["timings"][1].at("stage"), "search");
  EXPECT_EQ(j["timings"][1].at("seconds").get<double>(), 1.75);

  ASSERT_EQ(j.at("metrics").size(), 2u);
  for (size_t i = 0; i < r.metrics.size(); ++i) {
    const json& m = j["metrics"][i];
    const ReportMetrics& e = r.metrics[i];
    EXPECT_EQ(m.at("stage"), e.stage);
    EXPECT_EQ(m.at("epoch").get<int64_t>(), e.epoch);
    EXPECT_EQ(m.at("train_loss").get<double>(), e.train_loss);
    EXPECT_EQ(m.at("train_top1").get<double>(), e.train_top1);
    EXPECT_EQ(m.at("test_loss").get<double>(), e.test_loss);
    EXPECT_EQ(m.at("test_top1").get<double>(), e.test_top1);
    EXPECT_EQ(m.at("test_top5").get<double>(), e.test_top5);
  }
  // Doubles survive exactly (nlohmann prints the shortest round-trip form).
  ExperimentReport precise = r;
  precise.budget_mib = 0.1 + 0.2;
  ASSERT_TRUE(write_report(precise, dir.string()).ok());
  EXPECT_EQ(read_json(dir).at("budget_mib").get<double>(), 0.1 + 0.2);
}

TEST(Report, NonFiniteNumbersAreJsonNull) {
  testing::ScopedTempDir temp;
  const fs::path& dir = temp.path();
  ExperimentReport r = sample_report();
  r.results[0].top1 = kNaN;  // not evaluated
  r.results[0].top5 = std::numeric_limits<double>::infinity();
  r.metrics[1].train_loss = kNaN;
  r.orm[0][2] = r.orm[2][0] = kNaN;
  r.layers[1].log_theta = -std::numeric_limits<double>::infinity();
  ASSERT_TRUE(write_report(r, dir.string()).ok());
  const std::string text = read_text(dir / "report.json");
  EXPECT_THAT(text, Not(HasSubstr("NaN")));
  EXPECT_THAT(text, Not(HasSubstr("nan")));
  EXPECT_THAT(text, Not(HasSubstr("Infinity")));
  const json j = json::parse(text);  // throws on invalid JSON
  EXPECT_TRUE(j["results"][0]["top1"].is_null());
  EXPECT_TRUE(j["results"][0]["top5"].is_null());
  EXPECT_EQ(j["results"][0]["size_mib"].get<double>(), 1.0703);
  EXPECT_TRUE(j["metrics"][1]["train_loss"].is_null());
  EXPECT_TRUE(j["orm"][0][2].is_null());
  EXPECT_EQ(j["orm"][0][1].get<double>(), 0.8125);
  EXPECT_TRUE(j["layers"][1]["log_theta"].is_null());
  // The page shows them as "-" and leaves the unevaluated result out of the accuracy chart.
  const std::string html = read_text(dir / "report.html");
  EXPECT_THAT(html,
              HasSubstr("<tr><td>fp32</td><td>1.0703</td><td>0.000</td><td>-</td><td>-</td>"));
  EXPECT_THAT(html, Not(HasSubstr("<title>fp32:")));
  EXPECT_THAT(html, HasSubstr("<title>OMPQ qat: 0.2371 MiB, top-1 90.50%</title>"));
  EXPECT_THAT(html, HasSubstr("<title>layer1.0.conv1 / layer2.0.conv2: not a number</title>"));
}

TEST(Report, HtmlHasOneSvgPerChartAndNoExternalResource) {
  testing::ScopedTempDir temp;
  const fs::path& dir = temp.path();
  ExperimentReport r = sample_report();
  ASSERT_TRUE(write_report(r, dir.string()).ok());
  std::string html = read_text(dir / "report.html");
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(count_occurrences(html, "<svg"), 3u);  // bits, ORM, accuracy vs size
  EXPECT_EQ(count_occurrences(html, "</svg>"), 3u);
  EXPECT_THAT(html, HasSubstr("aria-label=\"weight bits per layer\""));
  EXPECT_THAT(html, HasSubstr("aria-label=\"ORM matrix\""));
  EXPECT_THAT(html, HasSubstr("aria-label=\"top-1 accuracy against model size\""));
  for (const char* external : {"<script", "src=", "href=", "@import", "http"}) {
    EXPECT_THAT(html, Not(HasSubstr(external)));
  }
  // One bar per layer, fixed ones marked; one heat-map cell per ORM entry with its value.
  EXPECT_EQ(count_occurrences(html, "class=\"searched\"><title>"), 3u);
  EXPECT_EQ(count_occurrences(html, "class=\"fixed\"><title>"), 2u);
  EXPECT_THAT(html, HasSubstr("<title>layer1.0.conv2: 4 bits, 2336 params</title>"));
  EXPECT_THAT(html, HasSubstr("<title>fc: 8 bits, 650 params (fixed)</title>"));
  EXPECT_EQ(count_occurrences(html, "<rect x=") - count_occurrences(html, "class=\"searched\"") -
                count_occurrences(html, "class=\"fixed\"") - 1,  // the colour bar
            9u);
  EXPECT_THAT(html, HasSubstr("<title>layer1.0.conv1 / layer1.0.conv2: 0.8125</title>"));
  // Diagonal (1.0) and the smallest entry (0.25) take the two ends of different colours.
  EXPECT_THAT(html, HasSubstr("fill=\"#fde725\"><title>layer1.0.conv1 / layer1.0.conv1"));
  EXPECT_THAT(html, HasSubstr("fill=\"#3b528b\"><title>layer1.0.conv1 / layer2.0.conv2"));
  // The results table.
  EXPECT_THAT(html, HasSubstr("<tr><td>OMPQ qat</td><td>0.2371</td><td>2.875</td><td>90.50</td>"
                              "<td>99.25</td></tr>"));

  // Without an ORM matrix (projection, baselines) the heat map is replaced by a sentence.
  r.orm.clear();
  ASSERT_TRUE(write_report(r, dir.string()).ok());
  html = read_text(dir / "report.html");
  EXPECT_EQ(count_occurrences(html, "<svg"), 2u);
  EXPECT_THAT(html, HasSubstr("No ORM matrix"));
  EXPECT_THAT(read_text(dir / "report.json"), HasSubstr("\"orm\": []"));
}

// The axes' ticks cover every point: each circle lies inside the plot area (x in [56, 476], y in
// [12, 232] of the chart), whatever the range of sizes and accuracies.
TEST(Report, AccuracyChartKeepsEveryPointInsideItsAxes) {
  testing::ScopedTempDir temp;
  const fs::path& dir = temp.path();
  ExperimentReport r = sample_report();
  for (const auto& results : std::vector<std::vector<ReportResult>>{
           {{"fp32", 44.6, 0, 69.76, 89.1}, {"w4", 5.8, 60, 68.1, 88}, {"w8", 11.1, 90, 69.7, 89}},
           {{"a", 0.2371, 1, 90.5, 99}, {"b", 0.30000001, 1, 91.04, 99}},
           {{"only", 3.0, 1, 50.0, 90}}}) {
    r.results = results;
    ASSERT_TRUE(write_report(r, dir.string()).ok());
    const std::string html = read_text(dir / "report.html");
    const std::regex circle("<circle cx=\"([-0-9.]+)\" cy=\"([-0-9.]+)\"");
    size_t points = 0;
    for (auto it = std::sregex_iterator(html.begin(), html.end(), circle);
         it != std::sregex_iterator(); ++it, ++points) {
      const double x = std::stod((*it)[1]), y = std::stod((*it)[2]);
      EXPECT_GE(x, 56.0) << (*it)[0];
      EXPECT_LE(x, 476.0) << (*it)[0];
      EXPECT_GE(y, 12.0) << (*it)[0];
      EXPECT_LE(y, 232.0) << (*it)[0];
    }
    EXPECT_EQ(points, results.size());
  }
}

TEST(Report, NamesAreEscapedInHtml) {
  testing::ScopedTempDir temp;
  const fs::path& dir = temp.path();
  ExperimentReport r = sample_report();
  r.model = "net<script>alert(1)</script>";
  r.layers[1].name = "a&b<\"c\">'d'";
  r.results[1].label = "<OMPQ & co>";
  r.timings[0].stage = "pre<train>";
  ASSERT_TRUE(write_report(r, dir.string()).ok());
  const std::string html = read_text(dir / "report.html");
  EXPECT_THAT(html, Not(HasSubstr("<script>")));
  EXPECT_THAT(html, Not(HasSubstr("a&b<")));
  EXPECT_THAT(html, Not(HasSubstr("<OMPQ")));
  EXPECT_THAT(html, HasSubstr("net&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_THAT(html, HasSubstr("a&amp;b&lt;&quot;c&quot;&gt;&#39;d&#39;"));
  EXPECT_THAT(html, HasSubstr("&lt;OMPQ &amp; co&gt;"));
  EXPECT_THAT(html, HasSubstr("pre&lt;train&gt;"));
  // The JSON keeps the names as they are.
  EXPECT_EQ(read_json(dir)["layers"][1]["name"], "a&b<\"c\">'d'");
}

TEST(Report, OrmOfTheWrongShapeIsAnError) {
  testing::ScopedTempDir temp;
  const fs::path& dir = temp.path();
  ExperimentReport r = sample_report();
  r.orm.pop_back();
  absl::Status status = write_report(r, dir.string());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("the ORM matrix has 2 rows of 3 values, expected [3, 3] for the 3 "
                        "non-fixed layers"));
  r = sample_report();
  r.orm[1].push_back(0.5);
  EXPECT_THAT(write_report(r, dir.string()).message(), HasSubstr("expected [3, 3]"));
  EXPECT_FALSE(fs::exists(dir / "report.json"));
  EXPECT_FALSE(fs::exists(dir / "report.html"));
}

TEST(Report, MissingFolderIsNamed) {
  testing::ScopedTempDir temp;
  const fs::path dir = temp.path() / "nowhere";
  absl::Status status = write_report(sample_report(), dir.string());
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(),
              HasSubstr("report folder '" + dir.string() + "' does not exist or is not a folder"));
}

// A file that cannot be created (its temporary name is taken by a folder: this fails for root
// too, unlike permissions) gives an error naming it, and the old report stays whole: no file is
// renamed until both are written.
TEST(Report, UnwritableFileIsNamedAndTheOldReportKept) {
  testing::ScopedTempDir temp;
  const fs::path& dir = temp.path();
  ExperimentReport r = sample_report();
  ASSERT_TRUE(write_report(r, dir.string()).ok());
  const std::string old_json = read_text(dir / "report.json");
  const std::string old_html = read_text(dir / "report.html");
  const std::string pid = std::to_string(::getpid());
  const fs::path taken = dir / ("report.html.tmp." + pid);
  fs::create_directory(taken);
  r.model = "resnet56";
  absl::Status status = write_report(r, dir.string());
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("write_report: cannot create '" + taken.string()));
  EXPECT_THAT(status.message(), HasSubstr("Is a directory"));
  EXPECT_EQ(read_text(dir / "report.json"), old_json);
  EXPECT_EQ(read_text(dir / "report.html"), old_html);
  EXPECT_FALSE(fs::exists(dir / ("report.json.tmp." + pid)));

  fs::remove(taken);
  ASSERT_TRUE(write_report(r, dir.string()).ok());
  EXPECT_EQ(read_json(dir)["model"], "resnet56");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path().filename().string());
  EXPECT_THAT(files, ::testing::UnorderedElementsAre("report.json", "report.html"));
}

}  // namespace
}  // namespace ompq::solver
