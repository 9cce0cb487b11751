// The budget sweep of ompq_sweep: from one FP32 model, with its search inputs computed once (OMPQ's
// layer importances from one forward pass, the Hessian traces) and one set of PTQ calibration
// images, every asked allocation method at every budget gives a bit config that is quantized by
// PTQ and evaluated: one point per (method, budget, allocation seed, PTQ seed).
//
// Output folder:
//   config.pbtxt   the experiment config the points share (model, data, weights, search and PTQ
//                  settings); a folder holding another config is refused unless `fresh`
//   fp32/          without `weights`: ompq_train's experiment with quant none (pretraining and the
//                  FP32 evaluation, resumable as there), whose fp32.safetensors is quantized
//   points/        one file per finished point, <method>_<budget>_a<seed>_s<seed>.csv (header and
//                  row) beside its bit config (.bits.pbtxt), each written atomically
//   points.csv     the finished points of this run's list, in its order
//   report.html    top-1 against size and against BOPs per method (solver/report/sweep_report.h),
//                  and the two charts alone: top1_vs_size.svg, top1_vs_bops.svg
// Rerunning skips the points already in points/, so a killed sweep loses only the point it was
// quantizing, and a rerun with more budgets, seeds or methods adds their points to the same
// folder. points.csv and the report are rewritten after every point.
//
// Points run PTQ seed by PTQ seed, budget by budget, method by method, so that a sweep stopped
// early has whole curves for its first seeds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/device.h"
#include "core/proto/ompq.pb.h"
#include "solver/search/hessian.h"

namespace ompq::solver {

// lp, ilp, projection: OMPQ's solvers (search.solver, search.rounding, search.beta of the
// config); uniform, random: solver/search/baselines.h; hessian: HAWQ-V3's Hessian-trace integer
// program (solver/search/hessian.h) on search.images labelled training images.
enum class SweepMethod { kLp, kIlp, kProjection, kUniform, kRandom, kHessian };

const char* sweep_method_name(SweepMethod method);

// A comma-separated list of method names: an empty list, an unknown or a repeated name is an
// InvalidArgument error naming it and the accepted names.
absl::StatusOr<std::vector<SweepMethod>> parse_sweep_methods(const std::string& list);

struct SweepOptions {
  // The shared settings: model and data (as ompq_train's), weights (empty: pretrain them with the
  // train section), seed (search images, calibration images, pretraining), act_bits, search
  // (images, beta, rounding) and ptq (iterations, calibration images, ...); quant must be ptq and
  // output_dir is the sweep's folder.
  proto::ExperimentConfig config;
  std::vector<SweepMethod> methods;
  // Exactly one of the two lists: fractions of the all-8-bit size in (0, 1], or sizes in MiB.
  std::vector<double> budget_fractions;
  std::vector<double> budgets_mib;
  std::vector<uint64_t> ptq_seeds = {0};           // every method's
  std::vector<uint64_t> random_seeds = {0, 1, 2};  // the random method's allocations
  HessianOptions hessian;                          // its seed is the config's seed
  Device device = Device::cpu();
  bool fresh = false;  // discard the folder's sweep outputs (and the fp32/ run) first
  // > 0: the correlation experiment (correlation.h) on the random points, written beside them
  // after every point from the 4th on; needs one budget and the random method (ompq_sweep's
  // --correlation_samples=N runs only it, with allocation seeds 0..N-1).
  int correlation_samples = 0;
};

// Every check that needs no file, as InvalidArgument errors naming the option and the value.
absl::Status validate_sweep_options(const SweepOptions& options);

// Runs (or resumes) the sweep. Every check that can fail before the first point (options, model,
// data, weights, every budget against the feasible range, the folder's config) runs before
// anything is written.
absl::Status run_sweep(const SweepOptions& options);

}  // namespace ompq::solver
