#include "solver/pipeline/sweep.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/timing.h"
#include "data/dataloader.h"
#include "layers/models/registry.h"
#include "solver/capture/sample_batch.h"
#include "solver/config/config_enums.h"
#include "solver/config/proto_io.h"
#include "solver/pipeline/correlation.h"
#include "solver/pipeline/experiment.h"
#include "solver/pipeline/experiment_data.h"
#include "solver/pipeline/quantize_point.h"
#include "solver/report/sweep_report.h"
#include "solver/search/baselines.h"
#include "solver/search/bit_config.h"
#include "solver/search/search.h"
#include "solver/search/search_enums.h"
#include "solver/space/cost_model.h"

namespace ompq::solver {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kConfigFile[] = "config.pbtxt";
constexpr char kPointsDir[] = "points";
constexpr char kPointsCsv[] = "points.csv";
constexpr char kReportHtml[] = "report.html";
constexpr char kSizeChart[] = "top1_vs_size.svg";
constexpr char kBopsChart[] = "top1_vs_bops.svg";
constexpr char kFp32Dir[] = "fp32";
constexpr char kFp32File[] = "fp32.safetensors";

constexpr SweepMethod kAllMethods[] = {SweepMethod::kLp,         SweepMethod::kIlp,
                                       SweepMethod::kProjection, SweepMethod::kUniform,
                                       SweepMethod::kRandom,     SweepMethod::kHessian};

absl::Status invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

std::string method_names() {
  std::vector<std::string> names;
  for (SweepMethod m : kAllMethods) names.push_back(sweep_method_name(m));
  return absl::StrJoin(names, ", ");
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct Budget {
  double fraction = std::numeric_limits<double>::quiet_NaN();  // none when given in MiB
  double mib = 0.0;
  std::string label;  // in file names: f0.3 (a fraction) or m0.12 (MiB)
  std::string describe() const {
    return std::isnan(fraction)
               ? absl::StrFormat("%.6g MiB", mib)
               : absl::StrFormat("%.6g of the 8-bit size (%.4f MiB)", fraction, mib);
  }
};

// A point's file name in points/, without its suffix.
std::string point_name(SweepMethod method, const Budget& budget, uint64_t allocation_seed,
                       uint64_t ptq_seed) {
  return absl::StrCat(sweep_method_name(method), "_", budget.label, "_a", allocation_seed, "_s",
                      ptq_seed);
}

// A method's bits at one budget, with the search time that a stand-alone search would have taken.
struct Allocation {
  proto::BitConfig bits;
  double search_s = 0.0;
};

class Sweep {
 public:
  explicit Sweep(SweepOptions options)
      : options_(std::move(options)), dir_(options_.config.output_dir()) {}
  absl::Status run();

 private:
  absl::Status prepare();
  absl::Status claim_folder();
  absl::Status ensure_fp32_weights();
  absl::StatusOr<std::shared_ptr<nn::Model>> fp32_model() const;
  // The inputs a method's allocations share, computed at its first allocation.
  absl::Status measure_importance();
  absl::Status measure_hessian_costs();
  absl::StatusOr<Allocation> allocate(SweepMethod method, const Budget& budget, uint64_t seed);
  absl::StatusOr<SweepPoint> quantize(SweepMethod method, const Budget& budget,
                                      uint64_t allocation_seed, uint64_t ptq_seed,
                                      const Allocation& allocation, const std::string& name);
  absl::Status write_results(const std::vector<SweepPoint>& points);
  absl::Status write_correlation(const std::vector<SweepPoint>& points);
  AllocationOptions allocation_options(SolverKind solver, const Budget& budget) const;
  fs::path point_file(const std::string& name, const char* suffix) const {
    return dir_ / kPointsDir / absl::StrCat(name, suffix);
  }
  std::string recorded_config() const;

  SweepOptions options_;
  fs::path dir_;
  ExperimentData data_;
  SearchSpace space_;
  std::vector<Budget> budgets_;
  std::string weights_;
  Tensor calibration_images_;
  // lp/ilp: log w per unit and the time of the features and the ORM.
  std::optional<std::vector<double>> log_weights_;
  double importance_s_ = 0.0;
  // hessian: the cost of each unit at each bit-width and the time of traces and costs.
  std::optional<std::vector<std::vector<double>>> hessian_costs_;
  double hessian_s_ = 0.0;
};

AllocationOptions Sweep::allocation_options(SolverKind solver, const Budget& budget) const {
  AllocationOptions a;
  a.solver = solver;
  a.rounding = rounding_kind(options_.config.search().rounding(), options_.config.model());
  a.budget_mib = budget.mib;
  a.act_bits = options_.config.act_bits();
  return a;
}

// Options, data, model, weights and budgets: everything that can fail before anything is written.
absl::Status Sweep::prepare() {
  OMPQ_RETURN_IF_ERROR(validate_sweep_options(options_));
  OMPQ_RETURN_IF_ERROR(validate_experiment_config(options_.config));
  OMPQ_ASSIGN_OR_RETURN(data_, open_experiment_data(options_.config));
  Generator gen(options_.config.seed());
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model,
                        make_experiment_model(options_.config, data_.num_classes, gen));
  if (!options_.config.weights().empty()) {
    absl::Status loaded =
        nn::load_model_weights(*model, options_.config.weights(), options_.config.model());
    if (!loaded.ok()) {
      return absl::Status(loaded.code(),
                          absl::StrCat(loaded.message(), " (the model has the ", data_.num_classes,
                                       " classes of ", data_.train->name(), ")"));
    }
  }
  OMPQ_ASSIGN_OR_RETURN(space_, build_search_space(*model, QuantMode::kPtq, data_.input_shape[1],
                                                   data_.input_shape[2]));
  const double eight_bit_mib = model_size_mib(space_, std::vector<int>(space_.units.size(), 8));
  for (double fraction : options_.budget_fractions) {
    budgets_.push_back({fraction, fraction * eight_bit_mib, absl::StrFormat("f%.6g", fraction)});
  }
  for (double mib : options_.budgets_mib) {
    budgets_.push_back(
        {std::numeric_limits<double>::quiet_NaN(), mib, absl::StrFormat("m%.6g", mib)});
  }
  for (const Budget& budget : budgets_) {
    absl::Status feasible =
        check_allocation_options(space_, allocation_options(SolverKind::kIlp, budget));
    if (!feasible.ok()) {
      return invalid(absl::StrCat(options_.config.model(), ": budget ", budget.describe(), ": ",
                                  feasible.message()));
    }
  }
  return absl::OkStatus();
}

// The settings every point depends on; threads change no result and are left out.
std::string Sweep::recorded_config() const {
  proto::ExperimentConfig config = options_.config;
  config.clear_threads();
  return absl::StrCat(to_text_format(config),
                      "# hessian_iterations: ", options_.hessian.max_iterations,
                      " hessian_tolerance: ", options_.hessian.tolerance, "\n");
}

absl::Status Sweep::claim_folder() {
  std::error_code ec;
  if (options_.fresh) {
    for (const char* output :
         {kConfigFile, kPointsDir, kPointsCsv, kReportHtml, kSizeChart, kBopsChart, kFp32Dir}) {
      fs::remove_all(dir_ / output, ec);
    }
  }
  fs::create_directories(dir_ / kPointsDir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(dir_.string(), ": ", ec.message()));
  const std::string text = recorded_config();
  const fs::path config = dir_ / kConfigFile;
  if (fs::exists(config) && read_file(config) != text) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir_.string(), " holds a sweep of other settings (", config.string(),
                     "); pass --fresh to start over there, or choose another --output_dir"));
  }
  return write_file_atomically(config.string(), text);
}

// The given weights, or those of ompq_train's experiment with quant none in fp32/ (pretrained
// there, or found finished there by a rerun).
absl::Status Sweep::ensure_fp32_weights() {
  if (!options_.config.weights().empty()) {
    weights_ = options_.config.weights();
    return absl::OkStatus();
  }
  proto::ExperimentConfig pretrain = options_.config;
  pretrain.set_quant(proto::QUANT_NONE);
  pretrain.set_output_dir((dir_ / kFp32Dir).string());
  ExperimentRuntime runtime;
  runtime.device = options_.device;
  std::fprintf(stderr, "[sweep] no weights: pretraining into %s\n", pretrain.output_dir().c_str());
  OMPQ_RETURN_IF_ERROR(run_experiment(pretrain, runtime));
  weights_ = (dir_ / kFp32Dir / kFp32File).string();
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<nn::Model>> Sweep::fp32_model() const {
  Generator gen(options_.config.seed());
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model,
                        make_experiment_model(options_.config, data_.num_classes, gen));
  OMPQ_RETURN_IF_ERROR(nn::load_model_weights(*model, weights_, options_.config.model()));
  model->to(options_.device);
  return model;
}

absl::Status Sweep::measure_importance() {
  if (log_weights_) return absl::OkStatus();
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, fp32_model());
  const proto::SearchConfig& sc = options_.config.search();
  OMPQ_ASSIGN_OR_RETURN(
      Tensor images,
      first_shuffled_batch(data_.search, sc.images(), options_.config.seed(), "search images"));
  SearchOptions search_options;
  search_options.model_name = options_.config.model();
  search_options.mode = QuantMode::kPtq;
  search_options.beta = sc.beta();
  search_options.allocation = allocation_options(SolverKind::kLp, budgets_.front());
  OMPQ_ASSIGN_OR_RETURN(SearchResult result,
                        search(*model, images.to(options_.device), search_options));
  log_weights_ = result.log_weights;
  importance_s_ = result.timings.features_s + result.timings.orm_s;
  std::fprintf(stderr, "[sweep] OMPQ importance of %zu units on %d images: %.2f s\n",
               result.log_weights.size(), sc.images(), importance_s_);
  return absl::OkStatus();
}

absl::Status Sweep::measure_hessian_costs() {
  if (hessian_costs_) return absl::OkStatus();
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, fp32_model());
  const proto::SearchConfig& sc = options_.config.search();
  OMPQ_ASSIGN_OR_RETURN(data::Batch batch,
                        first_shuffled_labeled_batch(data_.search, sc.images(),
                                                     options_.config.seed(), "search images"));
  HessianOptions hessian = options_.hessian;
  hessian.seed = options_.config.seed();
  const Clock::time_point start = Clock::now();
  OMPQ_ASSIGN_OR_RETURN(HessianTraces traces,
                        unit_hessian_traces(*model, space_, batch.inputs.to(options_.device),
                                            batch.labels.to(options_.device), hessian));
  hessian_costs_ = quantization_costs(*model, space_, traces.average_trace);
  hessian_s_ = seconds_since(start);
  std::fprintf(stderr,
               "[sweep] Hessian traces of %zu units on %d images: %d iterations (%s), %.2f s\n",
               traces.average_trace.size(), sc.images(), traces.iterations,
               traces.converged ? "converged" : "not converged", hessian_s_);
  return absl::OkStatus();
}

absl::StatusOr<Allocation> Sweep::allocate(SweepMethod method, const Budget& budget,
                                           uint64_t seed) {
  SearchOptions search_options;
  search_options.model_name = options_.config.model();
  search_options.mode = QuantMode::kPtq;
  search_options.beta = options_.config.search().beta();
  SearchResult result;
  result.space = space_;
  Allocation out;
  const Clock::time_point start = Clock::now();
  switch (method) {
    case SweepMethod::kLp:
    case SweepMethod::kIlp: {
      OMPQ_RETURN_IF_ERROR(measure_importance());
      const SolverKind solver = method == SweepMethod::kLp ? SolverKind::kLp : SolverKind::kIlp;
      search_options.allocation = allocation_options(solver, budget);
      const Clock::time_point solve_start = Clock::now();
      OMPQ_ASSIGN_OR_RETURN(result.allocation,
                            allocate_bits(space_, *log_weights_, search_options.allocation));
      out.search_s = importance_s_ + seconds_since(solve_start);
      break;
    }
    case SweepMethod::kProjection: {
      search_options.allocation = allocation_options(SolverKind::kProjection, budget);
      OMPQ_ASSIGN_OR_RETURN(result.allocation,
                            allocate_bits(space_, {}, search_options.allocation));
      out.search_s = seconds_since(start);
      break;
    }
    case SweepMethod::kUniform: {
      search_options.allocation = allocation_options(SolverKind::kIlp, budget);
      OMPQ_ASSIGN_OR_RETURN(UniformAllocation uniform,
                            uniform_allocation(space_, search_options.allocation));
      result.allocation = std::move(uniform.allocation);
      out.search_s = seconds_since(start);
      break;
    }
    case SweepMethod::kRandom: {
      search_options.allocation = allocation_options(SolverKind::kIlp, budget);
      OMPQ_ASSIGN_OR_RETURN(result.allocation,
                            random_allocation(space_, search_options.allocation, seed));
      out.search_s = seconds_since(start);
      break;
    }
    case SweepMethod::kHessian: {
      OMPQ_RETURN_IF_ERROR(measure_hessian_costs());
      search_options.allocation = allocation_options(SolverKind::kIlp, budget);
      const Clock::time_point solve_start = Clock::now();
      OMPQ_ASSIGN_OR_RETURN(result.allocation, allocate_bits_by_cost(space_, *hessian_costs_,
                                                                     search_options.allocation));
      out.search_s = hessian_s_ + seconds_since(solve_start);
      break;
    }
  }
  out.bits = make_bit_config(search_options, result);
  out.bits.set_num_classes(data_.num_classes);
  out.bits.set_small_input(options_.config.small_input());
  out.bits.set_width_mult(options_.config.width_mult());
  out.bits.set_seed(options_.config.seed());
  if (method == SweepMethod::kUniform || method == SweepMethod::kRandom ||
      method == SweepMethod::kHessian) {
    // Not OMPQ: the method takes the solver's place, without rounding or beta.
    out.bits.set_solver(method == SweepMethod::kUniform  ? proto::SOLVER_UNIFORM
                        : method == SweepMethod::kRandom ? proto::SOLVER_RANDOM
                                                         : proto::SOLVER_HESSIAN);
    out.bits.clear_rounding();
    out.bits.clear_beta();
    if (method == SweepMethod::kRandom) out.bits.set_seed(seed);
  }
  return out;
}

absl::StatusOr<SweepPoint> Sweep::quantize(SweepMethod method, const Budget& budget,
                                           uint64_t allocation_seed, uint64_t ptq_seed,
                                           const Allocation& allocation, const std::string& name) {
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, fp32_model());
  const std::string bits_file = point_file(name, ".bits.pbtxt").string();
  OMPQ_ASSIGN_OR_RETURN(LayerBitsPlan plan,
                        plan_from_bit_config(allocation.bits, *model, bits_file));
  PtqOptions ptq = ptq_options(options_.config.ptq());
  ptq.seed = ptq_seed;
  data::DataLoaderOptions loader;
  loader.batch_size = options_.config.train().eval_batch_size();
  loader.num_workers = options_.config.data().workers();
  if (options_.config.data().prefetch() > 0) {
    loader.prefetch_factor = options_.config.data().prefetch();
  }
  loader.pin_memory = options_.device.is_cuda();
  OMPQ_ASSIGN_OR_RETURN(
      PtqPointResult result,
      quantize_point(*model, plan, options_.config.act_bits(), calibration_images_, ptq,
                     data::DataLoader(data_.test, loader)));
  OMPQ_RETURN_IF_ERROR(write_text_proto(bits_file, allocation.bits));
  SweepPoint point;
  point.method = sweep_method_name(method);
  point.allocation_seed = allocation_seed;
  point.ptq_seed = ptq_seed;
  point.budget_fraction = budget.fraction;
  point.budget_mib = budget.mib;
  point.size_mib = allocation.bits.size_mib();
  point.bops_g = allocation.bits.bops_g();
  point.top1 = result.test.top1;
  point.top5 = result.test.top5;
  point.loss = result.test.loss;
  point.search_s = allocation.search_s;
  point.ptq_s = result.ptq_seconds;
  point.eval_s = result.eval_seconds;
  return point;
}

absl::Status Sweep::write_results(const std::vector<SweepPoint>& points) {
  OMPQ_RETURN_IF_ERROR(
      write_file_atomically((dir_ / kPointsCsv).string(), sweep_points_csv(points)));
  if (points.empty()) return absl::OkStatus();
  if (options_.correlation_samples > 0) OMPQ_RETURN_IF_ERROR(write_correlation(points));
  SweepReport report;
  report.model = options_.config.model();
  report.dataset = data_.train->name();
  const proto::PtqConfig& pc = options_.config.ptq();
  report.settings = absl::StrFormat(
      "PTQ: %d AdaRound iterations per block on %d calibration images (seed %d), activations at "
      "%d bits; OMPQ and Hessian on %d search images; evaluated on %d test images.",
      pc.iters(), pc.calibration_images(), options_.config.seed(), options_.config.act_bits(),
      options_.config.search().images(), data_.test->size());
  report.fp32_size_mib = fp32_size_mib(space_);
  report.points = points;
  return write_sweep_report(report, dir_.string());
}

// The random points scored by OMPQ's objective and the Hessian perturbation (correlation.h), once
// there are enough of them for a confidence interval.
absl::Status Sweep::write_correlation(const std::vector<SweepPoint>& points) {
  constexpr size_t kFewestSamples = 4;
  std::vector<const SweepPoint*> random;
  for (const SweepPoint& p : points) {
    if (p.method == sweep_method_name(SweepMethod::kRandom)) random.push_back(&p);
  }
  if (random.size() < kFewestSamples) return absl::OkStatus();
  OMPQ_RETURN_IF_ERROR(measure_importance());
  OMPQ_RETURN_IF_ERROR(measure_hessian_costs());
  const CorrelationInputs inputs{*log_weights_, *hessian_costs_, space_.min_bits};
  CorrelationReport report;
  report.model = options_.config.model();
  report.dataset = data_.train->name();
  const proto::PtqConfig& pc = options_.config.ptq();
  report.settings = absl::StrFormat(
      "Random bit configurations (allocation seeds of the random method) at %s, each quantized by "
      "PTQ with %d AdaRound iterations per block on %d calibration images (seed %d), activations "
      "at %d bits, evaluated on %d test images. OMPQ's weights: beta %g on %d search images; "
      "Hessian traces: at most %d Hutchinson iterations on the same images.",
      budgets_.front().describe(), pc.iters(), pc.calibration_images(), options_.config.seed(),
      options_.config.act_bits(), data_.test->size(), options_.config.search().beta(),
      options_.config.search().images(), options_.hessian.max_iterations);
  for (const SweepPoint* p : random) {
    const std::string name =
        point_name(SweepMethod::kRandom, budgets_.front(), p->allocation_seed, p->ptq_seed);
    proto::BitConfig bits;
    OMPQ_RETURN_IF_ERROR(read_text_proto(point_file(name, ".bits.pbtxt").string(), &bits));
    OMPQ_ASSIGN_OR_RETURN(CorrelationSample sample,
                          score_configuration(inputs, p->allocation_seed, bits, p->top1));
    report.samples.push_back(std::move(sample));
  }
  OMPQ_ASSIGN_OR_RETURN(CorrelationSummary summary,
                        write_correlation_report(report, dir_.string()));
  std::fprintf(stderr,
               "[sweep] correlation with top-1 over %zu configurations: OMPQ rho %.3f [%.3f, "
               "%.3f], Hessian rho %.3f [%.3f, %.3f] (%.0f%% intervals)\n",
               report.samples.size(), summary.ompq.rho, summary.ompq.lower, summary.ompq.upper,
               summary.hessian.rho, summary.hessian.lower, summary.hessian.upper,
               100 * summary.ompq.confidence);
  return absl::OkStatus();
}

absl::Status Sweep::run() {
  OMPQ_RETURN_IF_ERROR(prepare());
  OMPQ_RETURN_IF_ERROR(claim_folder());
  OMPQ_RETURN_IF_ERROR(ensure_fp32_weights());
  const proto::PtqConfig& pc = options_.config.ptq();
  OMPQ_ASSIGN_OR_RETURN(calibration_images_,
                        first_shuffled_batch(data_.train, pc.calibration_images(),
                                             options_.config.seed(), "calibration images"));
  calibration_images_ = calibration_images_.to(options_.device);

  int64_t total = 0;
  for (SweepMethod method : options_.methods) {
    total +=
        static_cast<int64_t>(budgets_.size() * options_.ptq_seeds.size() *
                             (method == SweepMethod::kRandom ? options_.random_seeds.size() : 1));
  }
  std::fprintf(stderr, "[sweep] %s on %s: %lld points into %s\n", options_.config.model().c_str(),
               data_.train->name().c_str(), static_cast<long long>(total), dir_.c_str());
  std::vector<SweepPoint> points;
  int64_t index = 0, skipped = 0;
  // Whether the table and reports already hold every point in `points` (each new point rewrites
  // them; a point finished earlier does not).
  bool results_current = false;
  for (uint64_t ptq_seed : options_.ptq_seeds) {
    for (const Budget& budget : budgets_) {
      for (SweepMethod method : options_.methods) {
        const std::vector<uint64_t> allocation_seeds =
            method == SweepMethod::kRandom ? options_.random_seeds : std::vector<uint64_t>{0};
        for (uint64_t allocation_seed : allocation_seeds) {
          ++index;
          const std::string name = point_name(method, budget, allocation_seed, ptq_seed);
          const fs::path file = point_file(name, ".csv");
          if (fs::exists(file)) {
            OMPQ_ASSIGN_OR_RETURN(std::vector<SweepPoint> done,
                                  parse_sweep_points_csv(read_file(file), file.string()));
            if (done.size() != 1) {
              return absl::DataLossError(
                  absl::StrCat(file.string(), ": ", done.size(), " points, expected 1"));
            }
            points.push_back(done.front());
            ++skipped;
            results_current = false;
            continue;
          }
          OMPQ_ASSIGN_OR_RETURN(Allocation allocation, allocate(method, budget, allocation_seed));
          OMPQ_ASSIGN_OR_RETURN(SweepPoint point, quantize(method, budget, allocation_seed,
                                                           ptq_seed, allocation, name));
          OMPQ_RETURN_IF_ERROR(write_file_atomically(file.string(), sweep_points_csv({point})));
          std::fprintf(stderr,
                       "[sweep] %lld/%lld %s, budget %s, seeds %llu/%llu: %.4f MiB, %.4f G BOPs, "
                       "top-1 %.2f%% top-5 %.2f%% (search %.2f s, PTQ %.1f s, eval %.1f s)\n",
                       static_cast<long long>(index), static_cast<long long>(total),
                       point.method.c_str(), budget.describe().c_str(),
                       static_cast<unsigned long long>(allocation_seed),
                       static_cast<unsigned long long>(ptq_seed), point.size_mib, point.bops_g,
                       point.top1, point.top5, point.search_s, point.ptq_s, point.eval_s);
          points.push_back(point);
          OMPQ_RETURN_IF_ERROR(write_results(points));
          results_current = true;
        }
      }
    }
  }
  if (!results_current) OMPQ_RETURN_IF_ERROR(write_results(points));
  std::fprintf(stderr, "[sweep] %lld points (%lld finished earlier): %s, %s\n",
               static_cast<long long>(total), static_cast<long long>(skipped),
               (dir_ / kPointsCsv).c_str(), (dir_ / kReportHtml).c_str());
  return absl::OkStatus();
}

absl::Status check_seeds(const std::vector<uint64_t>& seeds, const char* what) {
  if (seeds.empty()) return invalid(absl::StrCat(what, ": no seeds (expected at least one)"));
  for (size_t i = 0; i < seeds.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (seeds[i] == seeds[j]) {
        return invalid(absl::StrCat(what, ": seed ", seeds[i], " appears twice"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

const char* sweep_method_name(SweepMethod method) {
  switch (method) {
    case SweepMethod::kLp:
      return "lp";
    case SweepMethod::kIlp:
      return "ilp";
    case SweepMethod::kProjection:
      return "projection";
    case SweepMethod::kUniform:
      return "uniform";
    case SweepMethod::kRandom:
      return "random";
    case SweepMethod::kHessian:
      return "hessian";
  }
  return "?";
}

absl::StatusOr<std::vector<SweepMethod>> parse_sweep_methods(const std::string& list) {
  std::vector<SweepMethod> methods;
  for (absl::string_view name : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    std::optional<SweepMethod> found;
    for (SweepMethod m : kAllMethods) {
      if (name == sweep_method_name(m)) found = m;
    }
    if (!found) {
      return invalid(
          absl::StrCat("method \"", name, "\" (expected a list of: ", method_names(), ")"));
    }
    for (SweepMethod m : methods) {
      if (m == *found) return invalid(absl::StrCat("method \"", name, "\" appears twice"));
    }
    methods.push_back(*found);
  }
  if (methods.empty()) {
    return invalid(absl::StrCat("no methods (expected a list of: ", method_names(), ")"));
  }
  return methods;
}

absl::Status validate_sweep_options(const SweepOptions& o) {
  if (o.methods.empty()) {
    return invalid(absl::StrCat("no methods (expected some of: ", method_names(), ")"));
  }
  if (o.budget_fractions.empty() == o.budgets_mib.empty()) {
    return invalid(
        "budgets: give either fractions of the 8-bit size or sizes in MiB (exactly one list)");
  }
  std::vector<double> seen;
  for (double fraction : o.budget_fractions) {
    if (!(fraction > 0 && fraction <= 1)) {
      return invalid(absl::StrCat("budget fraction ", fraction, " (expected in (0, 1])"));
    }
  }
  for (double mib : o.budgets_mib) {
    if (!(std::isfinite(mib) && mib > 0)) {
      return invalid(absl::StrCat("budget ", mib, " MiB (expected finite and > 0)"));
    }
  }
  const std::vector<double>& budgets =
      o.budget_fractions.empty() ? o.budgets_mib : o.budget_fractions;
  for (size_t i = 0; i < budgets.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (budgets[i] == budgets[j]) {
        return invalid(absl::StrCat("budget ", budgets[i], " appears twice"));
      }
    }
  }
  OMPQ_RETURN_IF_ERROR(check_seeds(o.ptq_seeds, "PTQ seeds"));
  for (SweepMethod m : o.methods) {
    if (m == SweepMethod::kRandom)
      OMPQ_RETURN_IF_ERROR(check_seeds(o.random_seeds, "random seeds"));
  }
  if (o.config.quant() != proto::QUANT_PTQ) {
    return invalid(
        absl::StrCat("quant ", enum_name(o.config.quant()), ": the sweep quantizes by PTQ only"));
  }
  if (o.config.output_dir().empty()) return invalid("no output folder");
  if (o.correlation_samples < 0) {
    return invalid(absl::StrCat("correlation samples ", o.correlation_samples, " (expected >= 0)"));
  }
  if (o.correlation_samples > 0) {
    const size_t budgets = o.budget_fractions.size() + o.budgets_mib.size();
    const bool random =
        std::find(o.methods.begin(), o.methods.end(), SweepMethod::kRandom) != o.methods.end();
    if (budgets != 1 || !random) {
      return invalid(absl::StrCat("the correlation experiment (", o.correlation_samples,
                                  " samples) needs one budget (got ", budgets,
                                  ") and the random method"));
    }
    // It scores every configuration by OMPQ's weights and by the Hessian costs.
    if (o.config.search().images() < 2 ||
        !(o.hessian.max_iterations >= 1 && o.hessian.tolerance > 0)) {
      return invalid(absl::StrCat("the correlation experiment needs search images >= 2 (got ",
                                  o.config.search().images(), "), hessian iterations >= 1 (got ",
                                  o.hessian.max_iterations, ") and tolerance > 0 (got ",
                                  o.hessian.tolerance, ")"));
    }
  }
  const proto::PtqConfig& pc = o.config.ptq();
  if (pc.iters() < 1)
    return invalid(absl::StrCat("PTQ iterations ", pc.iters(), " (expected >= 1)"));
  if (pc.calibration_images() < 1) {
    return invalid(
        absl::StrCat("calibration images ", pc.calibration_images(), " (expected >= 1)"));
  }
  for (SweepMethod m : o.methods) {
    const int32_t images = o.config.search().images();
    if ((m == SweepMethod::kLp || m == SweepMethod::kIlp) && images < 2) {
      return invalid(absl::StrCat("search images ", images, " (OMPQ's ", sweep_method_name(m),
                                  " needs >= 2)"));
    }
    if (m == SweepMethod::kHessian && images < 1) {
      return invalid(absl::StrCat("search images ", images, " (hessian needs >= 1)"));
    }
    if (m == SweepMethod::kHessian && !(o.hessian.max_iterations >= 1 && o.hessian.tolerance > 0)) {
      return invalid(absl::StrCat("hessian iterations ", o.hessian.max_iterations,
                                  " and tolerance ", o.hessian.tolerance,
                                  " (expected >= 1 and > 0)"));
    }
  }
  return absl::OkStatus();
}

absl::Status run_sweep(const SweepOptions& options) {
  Sweep sweep(options);
  return sweep.run();
}

}  // namespace ompq::solver
