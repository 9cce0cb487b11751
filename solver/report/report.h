// The report of an experiment's output folder: report.json (every number, for scripts) and
// report.html (one self-contained page for people: inline SVG charts of the bits per layer, the
// ORM heat map and accuracy vs size, and tables of the results, stage times and metrics; no
// external assets, no scripts).
//
// ExperimentReport is plain data, filled by whoever ran the experiment (ompq_train); the report
// computes nothing. Numbers that are unknown (a row that was not evaluated, a metric a stage does
// not have) are NaN: JSON null, "-" in the HTML.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ompq::solver {

// One quantized layer (a search unit) in execution order.
struct ReportLayer {
  std::string name;  // e.g. "layer2.0.conv2"
  int bits = 0;      // weight bits
  int64_t params = 0;
  // QAT's stem and classifier: kept at 8 bits, outside the search and the ORM matrix.
  bool fixed = false;
  // ln theta_i, the layer's importance (docs/METHOD.md 2.2); lp/ilp searches only (theta itself can
  // underflow a double, its log cannot).
  std::optional<double> log_theta;
};

// One model of the results table, e.g. "fp32", "uniform 6 bits", "OMPQ qat".
struct ReportResult {
  std::string label;
  double size_mib = 0.0;
  double bops_g = 0.0;
  double top1 = 0.0;  // percent
  double top5 = 0.0;
};

struct ReportTiming {
  std::string stage;  // "pretrain", "search", ...
  double seconds = 0.0;
};

// One evaluation of a training stage (a metrics.csv row with its stage).
struct ReportMetrics {
  std::string stage;
  int64_t epoch = 0;
  double train_loss = 0.0;
  double train_top1 = 0.0;
  double test_loss = 0.0;
  double test_top1 = 0.0;
  double test_top5 = 0.0;
};

struct ExperimentReport {
  std::string model;   // e.g. "resnet20"
  std::string quant;   // "qat" or "ptq"
  std::string solver;  // "lp", "ilp", "projection", or a baseline ("uniform", "random")
  double budget_mib = 0.0;
  int act_bits = 8;
  std::vector<ReportLayer> layers;
  // The ORM matrix [L, L] of the L non-fixed layers, in their order; empty when the search had no
  // data (projection solver, baselines).
  std::vector<std::vector<double>> orm;
  std::vector<ReportResult> results;
  std::vector<ReportTiming> timings;
  std::vector<ReportMetrics> metrics;
};

// Writes `dir`/report.json and `dir`/report.html, each to a temporary file renamed over the old
// one (a reader sees the old report or the whole new one). `dir` must exist. An ORM matrix that is
// not [L, L] for the report's L non-fixed layers is an error; so is a folder that cannot be
// written, named in the message.
absl::Status write_report(const ExperimentReport& report, const std::string& dir);

}  // namespace ompq::solver
