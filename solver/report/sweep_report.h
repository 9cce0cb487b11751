// The results of a budget sweep (solver/pipeline/sweep.h): one row per point (allocation method,
// budget, seeds) as CSV, and report.html with top-1 against model size and against BOPs, one curve
// per method (the mean over a budget's points, error bars one standard deviation) and the Pareto
// front of the curves marked, above a table of the curves' points.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ompq::solver {

// One quantized model of the sweep. Budgets given in MiB have no fraction (NaN, an empty cell).
struct SweepPoint {
  std::string method;            // "lp", "uniform", "random", ...
  uint64_t allocation_seed = 0;  // the random allocation's; 0 for the other methods
  uint64_t ptq_seed = 0;         // the reconstruction's mini-batch sampling
  double budget_fraction = 0.0;  // of the all-8-bit size
  double budget_mib = 0.0;
  double size_mib = 0.0;
  double bops_g = 0.0;
  double top1 = 0.0;  // percent
  double top5 = 0.0;
  double loss = 0.0;      // mean test cross-entropy
  double search_s = 0.0;  // the allocation, its share of the features computed once included
  double ptq_s = 0.0;
  double eval_s = 0.0;
};

// The CSV columns, in order.
const std::vector<std::string>& sweep_point_columns();

// A header line and one line per point.
std::string sweep_points_csv(const std::vector<SweepPoint>& points);

// The points of sweep_points_csv's text; another header, a row with another number of cells or a
// cell that is not a number where one is expected is a DataLoss error naming `source` and the line.
absl::StatusOr<std::vector<SweepPoint>> parse_sweep_points_csv(const std::string& text,
                                                               const std::string& source);

// One point of a method's curve: the points of one budget, averaged.
struct SweepCurvePoint {
  std::string method;
  double budget_mib = 0.0;
  double size_mib = 0.0;  // mean
  double bops_g = 0.0;    // mean
  double top1 = 0.0;      // mean
  double top1_std = 0.0;  // sample standard deviation; 0 for a single point
  double top5 = 0.0;      // mean
  int64_t count = 0;      // points averaged (seeds)
};

// The curves' points, by method in order of first appearance, then by budget.
std::vector<SweepCurvePoint> sweep_curves(const std::vector<SweepPoint>& points);

struct SweepReport {
  std::string model;     // e.g. "resnet20"
  std::string dataset;   // e.g. "Fashion-MNIST"
  std::string settings;  // one sentence: PTQ iterations, calibration images, activation bits
  double fp32_size_mib = 0.0;
  std::vector<SweepPoint> points;
};

// Writes `dir`/report.html and its two charts as standalone files, top1_vs_size.svg and
// top1_vs_bops.svg (each to a temporary file renamed over the old one). No points, or a folder
// that cannot be written, is an error naming it.
absl::Status write_sweep_report(const SweepReport& report, const std::string& dir);

}  // namespace ompq::solver
