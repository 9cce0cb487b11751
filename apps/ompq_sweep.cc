// ompq_sweep: the budget sweep (solver/pipeline/sweep.h). From one FP32 model (--weights, or
// pretrained first as ompq_train does), every method of --methods at every budget of
// --budget_fractions (or --budgets_mb) gives a bit config that is quantized by PTQ and evaluated,
// once per --seeds PTQ seed (and, for random, per --random_seeds allocation): points.csv and
// report.html (top-1 against size and BOPs, one curve per method, the Pareto front marked).
//   ompq_sweep --weights=out/train/fp32.safetensors --methods=lp,uniform,random
//              --budget_fractions=0.25,0.3,0.35,0.4,0.5 --ptq_iters=100 --output_dir=out/sweep
// Rerunning the same command skips the finished points; a rerun with more budgets, seeds or
// methods adds theirs.
//
// The model, data, pretraining, search and PTQ settings are ompq_train's flags
// (apps/experiment_flags.h), --config included; the sweep quantizes by PTQ and chooses the bits
// itself, so --quant other than ptq, --bits, --budget_mb, --budget_fraction and --solver are
// refused with the flag that replaces them. The folder is --output_dir (default out/sweep), never
// a --config file's.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "apps/app_main.h"
#include "apps/experiment_flags.h"
#include "core/error.h"
#include "core/parallel.h"
#include "runtime/init.h"
#include "solver/pipeline/sweep.h"

ABSL_FLAG(std::string, methods, "lp,uniform,random",
          "allocation methods, comma-separated: lp, ilp, projection (OMPQ's solvers), uniform, "
          "random, hessian (HAWQ-V3's Hessian traces)");
ABSL_FLAG(std::vector<std::string>, budget_fractions,
          std::vector<std::string>({"0.25", "0.3", "0.35", "0.4", "0.45", "0.5"}),
          "size budgets as fractions of the all-8-bit size (PTQ: 0.25 is every layer at 2 bits, "
          "0.5 at 4)");
ABSL_FLAG(std::vector<std::string>, budgets_mb, {},
          "size budgets in MiB instead of --budget_fractions");
ABSL_FLAG(std::vector<std::string>, seeds, std::vector<std::string>({"0"}),
          "PTQ seeds (the reconstruction's mini-batches), every method");
ABSL_FLAG(std::vector<std::string>, random_seeds, std::vector<std::string>({"0", "1", "2"}),
          "the random method's allocation seeds");
ABSL_FLAG(int32_t, hessian_iterations, 100, "hessian: at most this many Hutchinson iterations");
ABSL_FLAG(double, hessian_tolerance, 1e-3,
          "hessian: stop when no unit's trace estimate moves by this fraction");
ABSL_FLAG(bool, fresh, false, "discard the sweep's outputs already in --output_dir");
ABSL_FLAG(int32_t, correlation_samples, 0,
          "N > 0: the correlation experiment (solver/pipeline/correlation.h) instead of a sweep: "
          "N random configurations (allocation seeds 0..N-1) at the one budget given, each "
          "quantized, against OMPQ's objective and the Hessian perturbation (Spearman rho)");

namespace ompq {
namespace {

constexpr char kDefaultOutputDir[] = "out/sweep";

absl::Status invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

absl::StatusOr<std::vector<double>> parse_numbers(const char* flag,
                                                  const std::vector<std::string>& values) {
  std::vector<double> numbers;
  for (const std::string& value : values) {
    double number = 0;
    if (!absl::SimpleAtod(value, &number)) {
      return invalid(absl::StrCat("--", flag, ": \"", value, "\" is not a number"));
    }
    numbers.push_back(number);
  }
  return numbers;
}

absl::StatusOr<std::vector<uint64_t>> parse_seeds(const char* flag,
                                                  const std::vector<std::string>& values) {
  std::vector<uint64_t> seeds;
  for (const std::string& value : values) {
    uint64_t seed = 0;
    if (!absl::SimpleAtoi(value, &seed)) {
      return invalid(absl::StrCat("--", flag, ": \"", value, "\" is not an unsigned integer"));
    }
    seeds.push_back(seed);
  }
  return seeds;
}

// ompq_train's flags that choose the bits or the quantization, which the sweep does itself.
absl::Status refuse_experiment_only_flags() {
  const std::pair<const char*, const char*> replaced[] = {
      {"bits", "--methods"},
      {"budget_mb", "--budgets_mb"},
      {"budget_fraction", "--budget_fractions"},
      {"solver", "--methods (lp, ilp, projection)"}};
  for (const auto& [flag, instead] : replaced) {
    if (flag_given(flag)) {
      return invalid(absl::StrCat("--", flag, " is ompq_train's; the sweep takes ", instead));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<solver::SweepOptions> sweep_options() {
  OMPQ_RETURN_IF_ERROR(refuse_experiment_only_flags());
  solver::SweepOptions o;
  OMPQ_ASSIGN_OR_RETURN(o.config, resolve_experiment_config());
  if (flag_given("quant") && o.config.quant() != proto::QUANT_PTQ) {
    return invalid("--quant: the sweep quantizes by PTQ only (--quant=ptq)");
  }
  o.config.set_quant(proto::QUANT_PTQ);
  // A --config file's output_dir is ompq_train's folder, not the sweep's.
  if (!flag_given("output_dir")) o.config.set_output_dir(kDefaultOutputDir);
  OMPQ_ASSIGN_OR_RETURN(o.methods, solver::parse_sweep_methods(absl::GetFlag(FLAGS_methods)));
  OMPQ_ASSIGN_OR_RETURN(o.budgets_mib,
                        parse_numbers("budgets_mb", absl::GetFlag(FLAGS_budgets_mb)));
  if (o.budgets_mib.empty()) {
    OMPQ_ASSIGN_OR_RETURN(o.budget_fractions,
                          parse_numbers("budget_fractions", absl::GetFlag(FLAGS_budget_fractions)));
  } else if (flag_given("budget_fractions")) {
    return invalid("--budget_fractions and --budgets_mb: give one of the two");
  }
  OMPQ_ASSIGN_OR_RETURN(o.ptq_seeds, parse_seeds("seeds", absl::GetFlag(FLAGS_seeds)));
  OMPQ_ASSIGN_OR_RETURN(o.random_seeds,
                        parse_seeds("random_seeds", absl::GetFlag(FLAGS_random_seeds)));
  o.hessian.max_iterations = absl::GetFlag(FLAGS_hessian_iterations);
  o.hessian.tolerance = absl::GetFlag(FLAGS_hessian_tolerance);
  o.fresh = absl::GetFlag(FLAGS_fresh);
  o.correlation_samples = absl::GetFlag(FLAGS_correlation_samples);
  if (o.correlation_samples > 0) {
    if (flag_given("methods") || flag_given("random_seeds")) {
      return invalid(
          "--correlation_samples chooses the configurations itself: drop --methods and "
          "--random_seeds");
    }
    o.methods = {solver::SweepMethod::kRandom};
    o.random_seeds.clear();
    for (int32_t seed = 0; seed < o.correlation_samples; ++seed) o.random_seeds.push_back(seed);
  }
  return o;
}

absl::Status run() {
  OMPQ_ASSIGN_OR_RETURN(solver::SweepOptions options, sweep_options());
  OMPQ_ASSIGN_OR_RETURN(options.device, usable_device(options.config.device()));
  OMPQ_RETURN_IF_ERROR(use_device(options.device));
  if (options.config.threads() > 0) set_num_threads(options.config.threads());
  return solver::run_sweep(options);
}

}  // namespace
}  // namespace ompq

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Sweeps size budgets and allocation methods: search, PTQ and evaluation per point.\n"
      "  ompq_sweep [--weights=FP32.safetensors] [--methods=lp,uniform,random]\n"
      "             [--budget_fractions=0.25,0.3,...|--budgets_mb=...] [--seeds=0]\n"
      "             [--random_seeds=0,1,2] [--ptq_iters=500] [--output_dir=out/sweep]\n"
      "  and ompq_train's model, data, pretraining, search and PTQ flags.\n"
      "A rerun with the same flags skips the finished points.");
  ompq::collect_given_flags(argc, argv);
  absl::ParseCommandLine(argc, argv);
  return ompq::run_app("ompq_sweep", ompq::run);
}
