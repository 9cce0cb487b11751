// The budget sweep: method lists and options refused with the value named, the points' CSV round
// trip and its errors, the curves' means and deviations, and a small sweep on Fashion-MNIST that
// pretrains its model, runs every point once, skips the finished ones on a rerun, redoes exactly
// the point whose file a kill would have left missing, and refuses a folder of other settings.
#include "solver/pipeline/sweep.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "solver/report/sweep_report.h"
#include "tests/temp_dir.h"

namespace ompq::solver {
namespace {

namespace fs = std::filesystem;
using ::ompq::testing::ScopedTempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kFashionMnist[] = "/usr/share/datasets/fashion-mnist";

std::string message(const absl::Status& status) { return std::string(status.message()); }

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(SweepMethods, ParsesAListAndNamesABadEntry) {
  absl::StatusOr<std::vector<SweepMethod>> methods = parse_sweep_methods("lp,uniform,random");
  ASSERT_TRUE(methods.ok()) << methods.status();
  EXPECT_THAT(*methods, ElementsAre(SweepMethod::kLp, SweepMethod::kUniform, SweepMethod::kRandom));
  EXPECT_THAT(message(parse_sweep_methods("lp,hawq").status()),
              HasSubstr("method \"hawq\" (expected a list of: lp, ilp, projection, uniform, "
                        "random, hessian)"));
  EXPECT_THAT(message(parse_sweep_methods("lp,ilp,lp").status()),
              HasSubstr("method \"lp\" appears twice"));
  EXPECT_THAT(message(parse_sweep_methods("").status()), HasSubstr("no methods"));
}

SweepOptions valid_options(const std::string& dir) {
  SweepOptions o;
  proto::ExperimentConfig& c = o.config;
  c.set_model("resnet20");
  c.set_output_dir(dir);
  c.set_quant(proto::QUANT_PTQ);
  c.set_act_bits(8);
  c.mutable_data()->set_train_limit(64);
  c.mutable_data()->set_test_limit(40);
  c.mutable_train()->set_epochs(1);
  c.mutable_train()->set_batch_size(32);
  c.mutable_train()->set_eval_batch_size(20);
  c.mutable_train()->set_lr(0.05);
  c.mutable_train()->set_log_interval(100);
  c.mutable_search()->set_beta(1);
  c.mutable_search()->set_images(8);
  c.mutable_search()->set_rounding(proto::ROUNDING_DFS);
  c.mutable_ptq()->set_iters(2);
  c.mutable_ptq()->set_calibration_images(8);
  o.methods = {SweepMethod::kLp, SweepMethod::kRandom};
  o.budget_fractions = {0.3};
  o.ptq_seeds = {0};
  o.random_seeds = {4, 5};
  return o;
}

TEST(SweepOptions, NamesTheBadOption) {
  EXPECT_TRUE(validate_sweep_options(valid_options("out")).ok());
  auto error = [](const std::function<void(SweepOptions&)>& change) {
    SweepOptions o = valid_options("out");
    change(o);
    return message(validate_sweep_options(o));
  };
  EXPECT_THAT(error([](SweepOptions& o) { o.methods.clear(); }), HasSubstr("no methods"));
  EXPECT_THAT(error([](SweepOptions& o) { o.budgets_mib = {0.1}; }), HasSubstr("exactly one list"));
  EXPECT_THAT(error([](SweepOptions& o) { o.budget_fractions.clear(); }),
              HasSubstr("exactly one list"));
  EXPECT_THAT(error([](SweepOptions& o) {
                o.budget_fractions = {0.3, 1.5};
              }),
              HasSubstr("budget fraction 1.5 (expected in (0, 1])"));
  EXPECT_THAT(error([](SweepOptions& o) {
                o.budget_fractions = {0.3, 0.3};
              }),
              HasSubstr("budget 0.3 appears twice"));
  EXPECT_THAT(error([](SweepOptions& o) {
                o.budget_fractions.clear();
                o.budgets_mib = {-1};
              }),
              HasSubstr("budget -1 MiB (expected finite and > 0)"));
  EXPECT_THAT(error([](SweepOptions& o) {
                o.ptq_seeds = {1, 2, 1};
              }),
              HasSubstr("PTQ seeds: seed 1 appears twice"));
  EXPECT_THAT(error([](SweepOptions& o) { o.random_seeds.clear(); }),
              HasSubstr("random seeds: no seeds"));
  EXPECT_THAT(error([](SweepOptions& o) { o.config.set_quant(proto::QUANT_QAT); }),
              HasSubstr("the sweep quantizes by PTQ only"));
  EXPECT_THAT(error([](SweepOptions& o) { o.config.mutable_ptq()->set_iters(0); }),
              HasSubstr("PTQ iterations 0 (expected >= 1)"));
  EXPECT_THAT(error([](SweepOptions& o) { o.config.mutable_search()->set_images(1); }),
              HasSubstr("search images 1 (OMPQ's lp needs >= 2)"));
  EXPECT_THAT(error([](SweepOptions& o) {
                o.methods = {SweepMethod::kHessian};
                o.hessian.max_iterations = 0;
              }),
              HasSubstr("hessian iterations 0"));
}

SweepPoint point(const std::string& method, double budget, double size, double top1,
                 uint64_t seed) {
  SweepPoint p;
  p.method = method;
  p.ptq_seed = seed;
  p.budget_fraction = std::nan("");
  p.budget_mib = budget;
  p.size_mib = size;
  p.bops_g = 10 * size;
  p.top1 = top1;
  p.top5 = top1 + 10;
  p.loss = 0.5;
  p.search_s = 1.25;
  p.ptq_s = 20.5;
  p.eval_s = 2;
  return p;
}

TEST(SweepPointsCsv, RoundTripsAndNamesTheBadLine) {
  std::vector<SweepPoint> points = {point("lp", 0.1, 0.0995, 80.25, 0),
                                    point("random", 0.2, 0.19, 70.5, 3)};
  points[1].allocation_seed = 7;
  points[1].budget_fraction = 0.4;
  const std::string csv = sweep_points_csv(points);
  absl::StatusOr<std::vector<SweepPoint>> back = parse_sweep_points_csv(csv, "p.csv");
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].method, "lp");
  EXPECT_TRUE(std::isnan((*back)[0].budget_fraction));
  EXPECT_EQ((*back)[1].allocation_seed, 7u);
  EXPECT_EQ((*back)[1].ptq_seed, 3u);
  EXPECT_DOUBLE_EQ((*back)[1].budget_fraction, 0.4);
  EXPECT_DOUBLE_EQ((*back)[1].size_mib, 0.19);
  EXPECT_DOUBLE_EQ((*back)[1].top1, 70.5);
  EXPECT_DOUBLE_EQ((*back)[1].ptq_s, 20.5);
  EXPECT_EQ(sweep_points_csv(*back), csv);

  EXPECT_THAT(message(parse_sweep_points_csv("method,seed\n", "p.csv").status()),
              HasSubstr("p.csv line 1: expected the header"));
  const std::string header = csv.substr(0, csv.find('\n') + 1);
  EXPECT_THAT(message(parse_sweep_points_csv(header + "lp,0,0\n", "p.csv").status()),
              HasSubstr("p.csv line 2: 3 cells, expected 13"));
  EXPECT_THAT(
      message(parse_sweep_points_csv(header + "lp,0,0,,0.1,0.1,1,x,1,1,1,1,1\n", "p.csv").status()),
      HasSubstr("p.csv line 2: top1 \"x\" is not a number"));
  EXPECT_THAT(
      message(
          parse_sweep_points_csv(header + "lp,-1,0,,0.1,0.1,1,1,1,1,1,1,1\n", "p.csv").status()),
      HasSubstr("a seed that is not an unsigned integer"));
}

TEST(SweepCurves, MeanAndDeviationPerMethodAndBudget) {
  const std::vector<SweepPoint> points = {
      point("random", 0.2, 0.18, 60, 0), point("lp", 0.2, 0.2, 80, 0),
      point("random", 0.2, 0.20, 70, 1), point("random", 0.1, 0.1, 50, 0),
      point("random", 0.2, 0.19, 80, 2)};
  const std::vector<SweepCurvePoint> curves = sweep_curves(points);
  ASSERT_EQ(curves.size(), 3u);
  EXPECT_EQ(curves[0].method, "random");  // first seen, then by budget
  EXPECT_DOUBLE_EQ(curves[0].budget_mib, 0.1);
  EXPECT_EQ(curves[0].count, 1);
  EXPECT_DOUBLE_EQ(curves[0].top1_std, 0.0);
  EXPECT_DOUBLE_EQ(curves[1].budget_mib, 0.2);
  EXPECT_EQ(curves[1].count, 3);
  EXPECT_DOUBLE_EQ(curves[1].size_mib, 0.19);
  EXPECT_DOUBLE_EQ(curves[1].top1, 70.0);
  EXPECT_DOUBLE_EQ(curves[1].top1_std, 10.0);
  EXPECT_DOUBLE_EQ(curves[1].top5, 80.0);
  EXPECT_EQ(curves[2].method, "lp");
  EXPECT_DOUBLE_EQ(curves[2].top1, 80.0);
}

TEST(SweepReport, DrawsBothChartsAndRefusesNoPoints) {
  ScopedTempDir dir("sweep_report");
  SweepReport report;
  report.model = "resnet20";
  report.dataset = "Fashion-MNIST";
  EXPECT_THAT(message(write_sweep_report(report, dir.path().string())),
              HasSubstr("no finished points"));
  report.points = {point("lp", 0.2, 0.2, 80, 0), point("uniform", 0.2, 0.19, 75, 0)};
  ASSERT_TRUE(write_sweep_report(report, dir.path().string()).ok());
  const std::string html = read(dir.path() / "report.html");
  EXPECT_THAT(html, HasSubstr("Top-1 against model size"));
  EXPECT_THAT(html, HasSubstr("Top-1 against BOPs"));
  size_t svgs = 0;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) {
    ++svgs;
  }
  EXPECT_EQ(svgs, 2u);
  for (const char* chart : {"top1_vs_size.svg", "top1_vs_bops.svg"}) {
    const std::string svg = read(dir.path() / chart);
    EXPECT_THAT(svg, ::testing::StartsWith("<?xml")) << chart;
    EXPECT_THAT(svg, HasSubstr("uniform")) << chart;  // a legend entry
  }
}

// The files of points/ with their last-write times.
std::map<std::string, fs::file_time_type> point_files(const fs::path& dir) {
  std::map<std::string, fs::file_time_type> files;
  for (const auto& entry : fs::directory_iterator(dir / "points")) {
    files[entry.path().filename().string()] = fs::last_write_time(entry.path());
  }
  return files;
}

TEST(Sweep, PretrainsRunsEveryPointOnceAndResumes) {
  if (!fs::exists(fs::path(kFashionMnist) / "train-images-idx3-ubyte.gz") &&
      !fs::exists(fs::path(kFashionMnist) / "train-images-idx3-ubyte")) {
    GTEST_SKIP() << kFashionMnist << " is missing (Debian package dataset-fashion-mnist)";
  }
  ScopedTempDir dir("sweep_run");
  const SweepOptions options = valid_options(dir.path().string());
  ASSERT_TRUE(run_sweep(options).ok());
  EXPECT_TRUE(fs::exists(dir.path() / "fp32" / "fp32.safetensors"));
  EXPECT_TRUE(fs::exists(dir.path() / "report.html"));
  const std::map<std::string, fs::file_time_type> first = point_files(dir.path());
  std::vector<std::string> names;
  for (const auto& [name, time] : first) names.push_back(name);
  EXPECT_THAT(names, ElementsAre("lp_f0.3_a0_s0.bits.pbtxt", "lp_f0.3_a0_s0.csv",
                                 "random_f0.3_a4_s0.bits.pbtxt", "random_f0.3_a4_s0.csv",
                                 "random_f0.3_a5_s0.bits.pbtxt", "random_f0.3_a5_s0.csv"));
  const std::string csv = read(dir.path() / "points.csv");
  absl::StatusOr<std::vector<SweepPoint>> points = parse_sweep_points_csv(csv, "points.csv");
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 3u);
  // Method by method, each random seed.
  EXPECT_EQ((*points)[0].method, "lp");
  EXPECT_EQ((*points)[1].method, "random");
  EXPECT_EQ((*points)[1].allocation_seed, 4u);
  EXPECT_EQ((*points)[2].allocation_seed, 5u);
  EXPECT_DOUBLE_EQ((*points)[2].budget_fraction, 0.3);
  for (const SweepPoint& p : *points) {
    EXPECT_LE(p.size_mib, p.budget_mib) << p.method;
    EXPECT_GT(p.size_mib, 0.9 * p.budget_mib) << p.method;
    EXPECT_GT(p.bops_g, 0.0);
    EXPECT_GT(p.ptq_s, 0.0);
    EXPECT_GE(p.top1, 0.0);
    EXPECT_LE(p.top1, p.top5);
  }

  // A rerun quantizes nothing: every point file stays as it was, points.csv is the same.
  ASSERT_TRUE(run_sweep(options).ok());
  EXPECT_EQ(point_files(dir.path()), first);
  EXPECT_EQ(read(dir.path() / "points.csv"), csv);

  // A sweep killed while quantizing a point has no file for it: the rerun redoes that point
  // alone, with the same result (the PTQ seed and the calibration images fix it).
  fs::remove(dir.path() / "points" / "random_f0.3_a5_s0.csv");
  ASSERT_TRUE(run_sweep(options).ok());
  std::map<std::string, fs::file_time_type> after = point_files(dir.path());
  for (const auto& [name, time] : first) {
    if (name.rfind("random_f0.3_a5", 0) == 0) continue;
    EXPECT_EQ(after[name], time) << name;
  }
  absl::StatusOr<std::vector<SweepPoint>> redone =
      parse_sweep_points_csv(read(dir.path() / "points.csv"), "points.csv");
  ASSERT_TRUE(redone.ok()) << redone.status();
  ASSERT_EQ(redone->size(), points->size());
  for (size_t i = 0; i < points->size(); ++i) {
    EXPECT_EQ((*redone)[i].method, (*points)[i].method);
    EXPECT_EQ((*redone)[i].size_mib, (*points)[i].size_mib);
    EXPECT_EQ((*redone)[i].top1, (*points)[i].top1);
    EXPECT_EQ((*redone)[i].loss, (*points)[i].loss);
  }

  // Another method adds its points to the same folder.
  SweepOptions more = options;
  more.methods = {SweepMethod::kUniform};
  more.budget_fractions = {0.5};
  ASSERT_TRUE(run_sweep(more).ok());
  EXPECT_TRUE(fs::exists(dir.path() / "points" / "uniform_f0.5_a0_s0.csv"));
  EXPECT_EQ(point_files(dir.path()).size(), first.size() + 2);

  SweepOptions other = options;
  other.config.mutable_ptq()->set_iters(3);
  EXPECT_THAT(message(run_sweep(other)), HasSubstr("holds a sweep of other settings"));
  SweepOptions infeasible = options;
  infeasible.budget_fractions = {0.2};
  EXPECT_THAT(message(run_sweep(infeasible)), HasSubstr("budget 0.2 of the 8-bit size"));
}

}  // namespace
}  // namespace ompq::solver
