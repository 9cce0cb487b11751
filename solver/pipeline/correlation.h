// The paper's correlation experiment (issue 16 item 3, OMPQ's Figure 3): random bit configurations
// at one size budget, each quantized by PTQ and evaluated (the budget sweep's random points,
// sweep.h), against the score that each method's integer program gives them:
//  - OMPQ: the LP objective sum_i w_i b_i of the ORM-derived layer weights (docs/METHOD.md 2.4),
//    as its logarithm (allocation_score.h); a good proxy ranks configurations like their top-1
//    (rho > 0);
//  - HAWQ-V3: the Hessian perturbation sum_i trace_i ||Q_b(W_i) - W_i||^2 (docs/METHOD.md 7); lower
//    predicts better (rho < 0).
// Spearman's rho with its confidence interval (statistics.h) for each, one scatter plot each, and
// the samples as CSV.
//
// Output files in the sweep's folder: correlation.csv (one row per configuration),
// correlation_ompq.svg and correlation_hessian.svg (standalone), correlation.html (both plots and
// the two correlations), each written atomically.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/proto/ompq.pb.h"
#include "solver/report/statistics.h"

namespace ompq::solver {

// What scores a configuration: OMPQ's log w per searched unit (orm.h log_layer_weights) and the
// Hessian cost of each unit at each bit-width from `min_bits` (hessian.h quantization_costs).
struct CorrelationInputs {
  std::vector<double> log_weights;
  std::vector<std::vector<double>> hessian_costs;
  int min_bits = 2;
};

struct CorrelationSample {
  uint64_t allocation_seed = 0;
  std::vector<int> bits;  // per searched unit, in execution order
  double size_mib = 0.0;
  double bops_g = 0.0;
  double top1 = 0.0;                // percent
  double ompq_log_objective = 0.0;  // log sum_i w_i b_i
  double hessian_objective = 0.0;   // sum_i cost_i(b_i)
};

// Scores the bits of `bits` (one layer per searched unit). A bit config with another number of
// layers than the inputs' units, or a bit-width without a Hessian cost, is an InvalidArgument
// error naming the seed.
absl::StatusOr<CorrelationSample> score_configuration(const CorrelationInputs& inputs,
                                                      uint64_t allocation_seed,
                                                      const proto::BitConfig& bits, double top1);

struct CorrelationSummary {
  RankCorrelation ompq;     // OMPQ's log objective against top-1
  RankCorrelation hessian;  // the Hessian perturbation against top-1
};

// Spearman's rho of each score with top-1 (statistics.h: at least 4 samples, top-1 not all
// equal); fewer samples or a constant column is a FailedPrecondition error saying which.
absl::StatusOr<CorrelationSummary> summarize_correlation(
    const std::vector<CorrelationSample>& samples, double confidence = 0.95);

// Header and one row per sample; bits as one space-separated cell.
std::string correlation_csv(const std::vector<CorrelationSample>& samples);

struct CorrelationReport {
  std::string model;     // e.g. "resnet20"
  std::string dataset;   // e.g. "Fashion-MNIST"
  std::string settings;  // one sentence: budget, PTQ schedule, test images, search inputs
  std::vector<CorrelationSample> samples;
};

// Writes the four output files into `dir` (which must exist) and returns the summary. Fewer than
// 4 samples, or a folder that cannot be written, is an error naming it.
absl::StatusOr<CorrelationSummary> write_correlation_report(const CorrelationReport& report,
                                                            const std::string& dir);

}  // namespace ompq::solver
