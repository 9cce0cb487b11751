// ompq_search: the OMPQ bit-width search on its own (docs/METHOD.md section 2). One forward pass of
// N training images measures how orthogonal the layers' features are; a linear program turns that
// into per-layer weight bits under a model-size budget. Prints the bits per layer, the model size,
// the BOPs and the time of each phase; --bits_out writes the bit config (proto::BitConfig, text
// format).
//   ompq_search --model=resnet18 --quant=qat --budget_mb=6.7 --beta=10 --weights=W.safetensors
//               --data=/data/imagenet --bits_out=bits.pbtxt
//   ompq_search --model=resnet18 --quant=ptq --budget_mb=3 --solver=projection   (data-free)
//   ompq_search --model=resnet18 --quant=qat --budget_mb=6.7 --allocation=random   (a baseline)
//   ompq_search --model=resnet20 --quant=ptq --budget_mb=0.1 --allocation=hessian --weights=W
//               --data=fashion-mnist   (HAWQ-V3's Hessian-trace baseline)
//
// Baselines (--allocation=uniform|random, solver/search/baselines.h): the same budget met by
// uniform bits or by random bits; data-free like projection. Their bit config names the baseline as
// its solver (the random one's seed is --allocation_seed) and feeds ompq_train --bits as any other.
// --allocation=hessian (solver/search/hessian.h) reads the weights and --num_images labelled
// images: the Hutchinson estimate of each unit's average Hessian trace (--hessian_iterations,
// --hessian_tolerance, Rademacher vectors from --seed), then the integer program of HAWQ-V3 under
// the same size (and BOPs) budget; its time is printed as OMPQ's is.
//
// Search images: the first batch of the training split shuffled by --seed, as the reference takes
// the first batch of a shuffled reader (docs/METHOD.md 1.2). ImageNet images get the reference's
// training augmentation (RandomResizedCrop with area [0.1, 1] and aspect ratio [0.8, 1.25],
// horizontal flip), drawn from --seed: the batch, and so the search, is a pure function of the
// flags. Fashion-MNIST is shaped to the model's input as ompq_train does it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "apps/app_main.h"
#include "core/parallel.h"
#include "core/proto/ompq.pb.h"
#include "data/catalog.h"
#include "layers/models/registry.h"
#include "runtime/init.h"
#include "solver/capture/sample_batch.h"
#include "solver/config/config_enums.h"
#include "solver/config/proto_io.h"
#include "solver/search/baselines.h"
#include "solver/search/bit_config.h"
#include "solver/search/hessian.h"
#include "solver/search/search.h"
#include "solver/search/search_enums.h"
#include "solver/space/cost_model.h"

ABSL_FLAG(std::string, model, "",
          "model name: resnet18, resnet34, resnet50, mobilenet_v2, resnet20");
ABSL_FLAG(int64_t, num_classes, 1000, "classes of the model's classifier");
ABSL_FLAG(bool, small_input, false,
          "the small-input variant (3x3 stride-1 stem, no max-pool) for 28-32 px images");
ABSL_FLAG(double, width_mult, 1.0, "channel width multiplier (mobilenet_v2)");
ABSL_FLAG(std::string, quant, "qat",
          "qat (4..8 bits, stem and classifier at 8) or ptq (2..4 bits, every layer searched)");
ABSL_FLAG(double, budget_mb, 0.0, "model size budget in MiB (required)");
ABSL_FLAG(double, bops_budget_g, 0.0, "BOPs budget in G, a second constraint (ilp only; 0: none)");
ABSL_FLAG(int32_t, act_bits, 8, "activation bits of the BOPs count");
ABSL_FLAG(bool, reference_bops, false,
          "count BOPs with the reference's FLOP counter, bugs included (docs/METHOD.md 2.8)");
ABSL_FLAG(double, beta, 1.0, "importance theta = exp(-beta * gamma)");
ABSL_FLAG(std::string, solver, "lp", "lp, ilp or projection (data-free)");
ABSL_FLAG(std::string, allocation, "ompq",
          "ompq (the search: --solver), or a data-free baseline at the same budget: uniform (the "
          "largest uniform bits), random (random bits filled up to the budget) or hessian "
          "(HAWQ-V3: Hessian traces and an integer program; reads --weights and --data)");
ABSL_FLAG(uint64_t, allocation_seed, 0, "the random baseline's seed");
ABSL_FLAG(int32_t, hessian_iterations, 100, "the hessian baseline's most Hutchinson iterations");
ABSL_FLAG(double, hessian_tolerance, 1e-3,
          "the hessian baseline stops when no unit's trace estimate moves by this fraction");
ABSL_FLAG(std::string, rounding, "",
          "dfs or nearest (lp and projection; default: the reference's, dfs for resnet18)");
ABSL_FLAG(std::string, weights, "",
          "the model's weights (safetensors); none: the randomly initialized model");
ABSL_FLAG(std::string, data, "",
          "search images: an ImageNet folder (its train/ split) or fashion-mnist[:DIR]");
ABSL_FLAG(int32_t, num_images, 32, "images of the one forward pass");
ABSL_FLAG(std::string, bits_out, "", "write the bit config here (protobuf text format)");
ABSL_FLAG(uint64_t, seed, 0,
          "picks the images and their crops; initializes a model without weights");
ABSL_FLAG(int32_t, threads, 0, "CPU threads (0: all cores)");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda:N");

namespace ompq {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kFashionMnistPrefix[] = "fashion-mnist";

absl::Status invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

// OMPQ's search or one of the baselines, which a bit config records as its solver.
enum class Allocation { kOmpq, kUniform, kRandom, kHessian };

absl::StatusOr<Allocation> parse_allocation(const std::string& name) {
  if (name == "ompq") return Allocation::kOmpq;
  if (name == "uniform") return Allocation::kUniform;
  if (name == "random") return Allocation::kRandom;
  if (name == "hessian") return Allocation::kHessian;
  return invalid(
      absl::StrCat("--allocation=", name, " (expected ompq, uniform, random or hessian)"));
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

nn::ModelSpec model_spec() {
  nn::ModelSpec spec;
  spec.name = absl::GetFlag(FLAGS_model);
  spec.num_classes = absl::GetFlag(FLAGS_num_classes);
  spec.small_input = absl::GetFlag(FLAGS_small_input);
  spec.width_mult = absl::GetFlag(FLAGS_width_mult);
  return spec;
}

absl::StatusOr<solver::SearchOptions> search_options() {
  solver::SearchOptions o;
  o.model_name = absl::GetFlag(FLAGS_model);
  OMPQ_ASSIGN_OR_RETURN(proto::Quant quant, solver::parse_enum_flag<proto::Quant>(
                                                "--quant", absl::GetFlag(FLAGS_quant),
                                                {proto::QUANT_QAT, proto::QUANT_PTQ}));
  o.mode = solver::quant_mode(quant);
  o.beta = absl::GetFlag(FLAGS_beta);
  if (!(std::isfinite(o.beta) && o.beta >= 0)) {
    return invalid(absl::StrCat("--beta ", o.beta, " (expected finite and >= 0)"));
  }
  solver::AllocationOptions& a = o.allocation;
  OMPQ_ASSIGN_OR_RETURN(proto::Solver solver,
                        solver::parse_enum_flag<proto::Solver>(
                            "--solver", absl::GetFlag(FLAGS_solver),
                            {proto::SOLVER_LP, proto::SOLVER_ILP, proto::SOLVER_PROJECTION}));
  OMPQ_ASSIGN_OR_RETURN(a.solver, solver::solver_kind(solver));
  OMPQ_ASSIGN_OR_RETURN(proto::Rounding rounding, solver::parse_enum_flag<proto::Rounding>(
                                                      "--rounding", absl::GetFlag(FLAGS_rounding)));
  a.rounding = solver::rounding_kind(rounding, o.model_name);
  a.budget_mib = absl::GetFlag(FLAGS_budget_mb);
  a.bops_budget_g = absl::GetFlag(FLAGS_bops_budget_g);
  a.act_bits = absl::GetFlag(FLAGS_act_bits);
  a.reference_bops = absl::GetFlag(FLAGS_reference_bops);
  return o;
}

// The model's search space; a missing budget is an error that states the feasible range.
absl::StatusOr<solver::SearchSpace> search_space(const nn::Model& model,
                                                 const solver::SearchOptions& o) {
  const Shape input = model.input_shape();
  OMPQ_ASSIGN_OR_RETURN(solver::SearchSpace space,
                        solver::build_search_space(model, o.mode, input[1], input[2]));
  if (absl::GetFlag(FLAGS_budget_mb) == 0.0) {
    const solver::Range range = solver::size_range_mib(space);
    return invalid(absl::StrFormat(
        "--budget_mb is required (model size in MiB; feasible for %s: [%.6f, %.6f])",
        solver::quant_mode_name(o.mode), range.min, range.max));
  }
  return space;
}

// The checks search() makes before its forward pass, made before loading weights and images so that
// a bad budget fails at once.
absl::Status check_search_space(const nn::Model& model, const solver::SearchOptions& o) {
  OMPQ_ASSIGN_OR_RETURN(solver::SearchSpace space, search_space(model, o));
  return solver::check_allocation_options(space, o.allocation);
}

absl::Status check_bits_folder(const std::string& bits_out) {
  const fs::path folder = fs::path(bits_out).parent_path();
  if (!folder.empty() && !fs::is_directory(folder)) {
    return invalid(
        absl::StrCat("--bits_out=", bits_out, ": folder ", folder.string(), " does not exist"));
  }
  return absl::OkStatus();
}

absl::Status with_model_name(const absl::Status& status, const std::string& model_name) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(model_name, ": ", status.message()));
}

// --data as a dataset shaped for the model's input [C, S, S], with the search's crops.
absl::StatusOr<std::shared_ptr<const data::Dataset>> open_search_data(const Shape& input) {
  const std::string spec = absl::GetFlag(FLAGS_data);
  data::DatasetRequest request;
  request.input = input;
  request.model = absl::GetFlag(FLAGS_model);
  request.use = data::DatasetUse::kSearch;
  request.kind = data::DatasetKind::kImageNet;
  request.dir = spec;
  if (spec == kFashionMnistPrefix ||
      absl::StartsWith(spec, absl::StrCat(kFashionMnistPrefix, ":"))) {
    request.kind = data::DatasetKind::kFashionMnist;
    request.dir = spec.size() > sizeof(kFashionMnistPrefix) - 1
                      ? spec.substr(sizeof(kFashionMnistPrefix))
                      : std::string();
  }
  return data::open_dataset(request);
}

// The bit config with this run's model variant and search inputs.
proto::BitConfig bit_config(const solver::SearchOptions& o, const solver::SearchResult& r,
                            Allocation allocation) {
  proto::BitConfig c = solver::make_bit_config(o, r);
  c.set_num_classes(absl::GetFlag(FLAGS_num_classes));
  c.set_small_input(absl::GetFlag(FLAGS_small_input));
  c.set_width_mult(absl::GetFlag(FLAGS_width_mult));
  if (allocation == Allocation::kHessian) {
    // Not OMPQ: no beta, no rounding; the weights and images are read as OMPQ's.
    c.set_solver(proto::SOLVER_HESSIAN);
    c.clear_rounding();
    c.clear_beta();
  } else if (allocation != Allocation::kOmpq) {
    // A baseline reads no importance and no images: its name takes the solver's place, and the
    // only seed that shapes it is the random baseline's.
    c.set_solver(allocation == Allocation::kUniform ? proto::SOLVER_UNIFORM : proto::SOLVER_RANDOM);
    c.clear_rounding();
    c.clear_beta();
    if (allocation == Allocation::kRandom) c.set_seed(absl::GetFlag(FLAGS_allocation_seed));
    return c;
  }
  c.set_seed(absl::GetFlag(FLAGS_seed));
  if (o.allocation.solver != solver::SolverKind::kProjection) {  // projection reads neither
    c.set_weights(absl::GetFlag(FLAGS_weights));
    c.set_data(absl::GetFlag(FLAGS_data));
    c.set_num_images(absl::GetFlag(FLAGS_num_images));
  }
  return c;
}

// The bits per layer, the size and the BOPs.
void print_allocation(const solver::SearchOptions& o, const solver::SearchResult& r) {
  const solver::SearchSpace& space = r.space;
  const bool relaxed = !r.allocation.relaxed_bits.empty();
  size_t width = 5;
  for (const auto* units : {&space.units, &space.fixed}) {
    for (const solver::SearchUnit& u : *units) width = std::max(width, u.name.size());
  }
  const int w = static_cast<int>(width);
  std::printf("%3s  %-*s %10s %5s%s\n", "#", w, "layer", "params", "bits",
              relaxed ? "  relaxed" : "");
  auto print_fixed = [&](const solver::SearchUnit& u) {
    std::printf("%3s  %-*s %10lld %5d  (fixed)\n", "", w, u.name.c_str(),
                static_cast<long long>(u.params), solver::SearchSpace::kFixedBits);
  };
  if (!space.fixed.empty()) print_fixed(space.fixed.front());
  for (size_t i = 0; i < space.units.size(); ++i) {
    std::printf("%3zu  %-*s %10lld %5d", i, w, space.units[i].name.c_str(),
                static_cast<long long>(space.units[i].params), r.allocation.bits[i]);
    if (relaxed) std::printf("  %7.4f", r.allocation.relaxed_bits[i]);
    std::printf("\n");
  }
  for (size_t i = 1; i < space.fixed.size(); ++i) print_fixed(space.fixed[i]);

  const solver::Range range = solver::size_range_mib(space);
  std::printf("size %.4f MiB (budget %.4f, feasible [%.4f, %.4f]; fp32 %.4f MiB)\n",
              r.allocation.size_mib, o.allocation.budget_mib, range.min, range.max,
              solver::fp32_size_mib(space));
  std::printf("BOPs %.4f G (activations at %d bits%s", r.allocation.bops_g, o.allocation.act_bits,
              o.allocation.reference_bops ? ", reference counter" : "");
  if (o.allocation.bops_budget_g > 0) std::printf("; budget %.4f G", o.allocation.bops_budget_g);
  std::printf(")\n");
  if (o.allocation.solver != solver::SolverKind::kIlp &&
      o.allocation.rounding == solver::Rounding::kHalfToEven &&
      r.allocation.size_mib > o.allocation.budget_mib) {
    std::printf(
        "(over the budget: half-to-even rounding ignores it, as the reference's does; "
        "--rounding=dfs or --solver=ilp keep to it)\n");
  }
}

void print_search_times(const solver::SearchOptions& o, const solver::SearchResult& r,
                        double load_s) {
  const solver::SearchTimings& t = r.timings;
  if (o.allocation.solver == solver::SolverKind::kProjection) {
    std::printf("time: solve %.3f s (data-free: no features, no ORM)\n", t.solve_s);
    return;
  }
  std::printf("time: features %.3f s, ORM %.3f s, solve %.3f s, search %.3f s (loading %.3f s)\n",
              t.features_s, t.orm_s, t.solve_s, t.features_s + t.orm_s + t.solve_s, load_s);
}

// A baseline at the search's budget (no weights, no images), printed and written as a search
// result is.
absl::Status run_baseline(const nn::Model& model, const solver::SearchOptions& options,
                          Allocation allocation, const std::string& bits_out) {
  if (!absl::GetFlag(FLAGS_weights).empty() || !absl::GetFlag(FLAGS_data).empty()) {
    std::fprintf(stderr, "ompq_search: the %s baseline reads neither --weights nor --data\n",
                 absl::GetFlag(FLAGS_allocation).c_str());
  }
  solver::SearchResult result;
  OMPQ_ASSIGN_OR_RETURN(result.space, search_space(model, options));
  const double budget = options.allocation.budget_mib;
  std::string summary;
  if (allocation == Allocation::kUniform) {
    OMPQ_ASSIGN_OR_RETURN(solver::UniformAllocation uniform,
                          solver::uniform_allocation(result.space, options.allocation));
    result.allocation = std::move(uniform.allocation);
    summary = absl::StrCat("uniform: ", uniform.summary);
  } else {
    const uint64_t seed = absl::GetFlag(FLAGS_allocation_seed);
    OMPQ_ASSIGN_OR_RETURN(result.allocation,
                          solver::random_allocation(result.space, options.allocation, seed));
    summary = absl::StrFormat("random: seed %d, %.4f MiB under the budget %.4f MiB", seed,
                              budget - result.allocation.size_mib, budget);
  }
  print_allocation(options, result);
  std::printf("%s\n", summary.c_str());
  if (!bits_out.empty()) {
    OMPQ_RETURN_IF_ERROR(
        solver::write_text_proto(bits_out, bit_config(options, result, allocation)));
    std::fprintf(stderr, "ompq_search: wrote %s\n", bits_out.c_str());
  }
  return absl::OkStatus();
}

// HAWQ-V3's allocation at the search's budget, printed and written as a search result is.
absl::Status run_hessian(nn::Model& model, const solver::SearchOptions& options,
                         const Tensor& images, const Tensor& labels, double load_s,
                         const std::string& bits_out) {
  solver::SearchResult result;
  OMPQ_ASSIGN_OR_RETURN(result.space, search_space(model, options));
  solver::HessianOptions hessian;
  hessian.max_iterations = absl::GetFlag(FLAGS_hessian_iterations);
  hessian.tolerance = absl::GetFlag(FLAGS_hessian_tolerance);
  hessian.seed = absl::GetFlag(FLAGS_seed);
  OMPQ_ASSIGN_OR_RETURN(
      solver::HessianSearchResult r,
      solver::hessian_search(model, result.space, images, labels, hessian, options.allocation));
  result.allocation = std::move(r.allocation);
  print_allocation(options, result);
  std::printf("hessian: %d Hutchinson iterations, largest relative change %.2e (%s %.0e)\n",
              r.traces.iterations, r.traces.relative_change,
              r.traces.converged ? "converged below" : "not converged to", hessian.tolerance);
  std::printf("%3s  %-24s %14s\n", "#", "layer", "avg trace");
  for (size_t i = 0; i < result.space.units.size(); ++i) {
    std::printf("%3zu  %-24s %14.6g\n", i, result.space.units[i].name.c_str(),
                r.traces.average_trace[i]);
  }
  std::printf(
      "time: Hessian traces %.3f s, quantization costs %.3f s, solve %.3f s, search %.3f s "
      "(loading %.3f s)\n",
      r.hessian_s, r.costs_s, r.solve_s, r.hessian_s + r.costs_s + r.solve_s, load_s);
  if (!bits_out.empty()) {
    OMPQ_RETURN_IF_ERROR(
        solver::write_text_proto(bits_out, bit_config(options, result, Allocation::kHessian)));
    std::fprintf(stderr, "ompq_search: wrote %s\n", bits_out.c_str());
  }
  return absl::OkStatus();
}

absl::Status run() {
  OMPQ_RETURN_IF_ERROR(check_model_flag(absl::GetFlag(FLAGS_model)));
  OMPQ_ASSIGN_OR_RETURN(solver::SearchOptions options, search_options());
  OMPQ_ASSIGN_OR_RETURN(Allocation allocation, parse_allocation(absl::GetFlag(FLAGS_allocation)));
  const bool hessian = allocation == Allocation::kHessian;
  // HAWQ-V3's integer program, whatever --solver says.
  if (hessian) options.allocation.solver = solver::SolverKind::kIlp;
  OMPQ_ASSIGN_OR_RETURN(Device device, usable_device(absl::GetFlag(FLAGS_device)));
  OMPQ_RETURN_IF_ERROR(use_device(device));
  if (absl::GetFlag(FLAGS_threads) > 0) set_num_threads(absl::GetFlag(FLAGS_threads));
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  Generator gen(seed);
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, nn::make_model(model_spec(), gen));
  const std::string bits_out = absl::GetFlag(FLAGS_bits_out);
  if (allocation == Allocation::kUniform || allocation == Allocation::kRandom) {
    OMPQ_RETURN_IF_ERROR(check_bits_folder(bits_out));
    return with_model_name(run_baseline(*model, options, allocation, bits_out), options.model_name);
  }
  OMPQ_RETURN_IF_ERROR(with_model_name(check_search_space(*model, options), options.model_name));
  OMPQ_RETURN_IF_ERROR(check_bits_folder(bits_out));
  const bool data_free = !hessian && options.allocation.solver == solver::SolverKind::kProjection;
  const std::string weights = absl::GetFlag(FLAGS_weights);
  const std::string data = absl::GetFlag(FLAGS_data);
  const int64_t num_images = absl::GetFlag(FLAGS_num_images);
  Tensor images, labels;
  const Clock::time_point load_start = Clock::now();
  if (data_free) {
    if (!weights.empty() || !data.empty()) {
      std::fprintf(stderr,
                   "ompq_search: the projection solver reads neither --weights nor --data\n");
    }
  } else {
    if (data.empty()) {
      if (hessian) {
        return invalid(
            "the hessian allocation needs labelled images: --data (an ImageNet folder or "
            "fashion-mnist[:DIR])");
      }
      return invalid(absl::StrCat("the ", solver::solver_name(options.allocation.solver),
                                  " solver needs --data (an ImageNet folder or "
                                  "fashion-mnist[:DIR]); --solver=projection needs none"));
    }
    const int64_t min_images = hessian ? 1 : 2;
    if (num_images < min_images) {
      return invalid(absl::StrCat("--num_images ", num_images, " (expected >= ", min_images, ")"));
    }
    if (weights.empty()) {
      std::fprintf(stderr,
                   "ompq_search: no --weights: searching the randomly initialized %s (seed %llu)\n",
                   options.model_name.c_str(), static_cast<unsigned long long>(seed));
    } else {
      OMPQ_RETURN_IF_ERROR(nn::load_model_weights(*model, weights, absl::GetFlag(FLAGS_model)));
    }
    OMPQ_ASSIGN_OR_RETURN(auto dataset, open_search_data(model->input_shape()));
    OMPQ_ASSIGN_OR_RETURN(data::Batch batch, solver::first_shuffled_labeled_batch(
                                                 dataset, num_images, seed, "--num_images"));
    images = batch.inputs;
    labels = batch.labels.to(device);
    std::fprintf(stderr, "ompq_search: %s, %lld images of %s, %d threads, %s\n",
                 options.model_name.c_str(), static_cast<long long>(num_images),
                 dataset->name().c_str(), num_threads(), device.str().c_str());
    model->to(device);
    images = images.to(device);
  }
  const double load_s = seconds_since(load_start);
  if (hessian) {
    return with_model_name(run_hessian(*model, options, images, labels, load_s, bits_out),
                           options.model_name);
  }

  OMPQ_ASSIGN_OR_RETURN(solver::SearchResult result, solver::search(*model, images, options));
  print_allocation(options, result);
  print_search_times(options, result, load_s);
  if (!bits_out.empty()) {
    OMPQ_RETURN_IF_ERROR(
        solver::write_text_proto(bits_out, bit_config(options, result, Allocation::kOmpq)));
    std::fprintf(stderr, "ompq_search: wrote %s\n", bits_out.c_str());
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace ompq

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Searches per-layer weight bit-widths with OMPQ.\n"
      "  ompq_search --model=NAME --quant=qat|ptq --budget_mb=MiB [--weights=W.safetensors]\n"
      "              --data=IMAGENET_DIR|fashion-mnist[:DIR] [--bits_out=FILE]\n"
      "  ompq_search --model=NAME --quant=qat|ptq --budget_mb=MiB --solver=projection\n"
      "  ompq_search --model=NAME --quant=qat|ptq --budget_mb=MiB --allocation=uniform|random\n"
      "              [--allocation_seed=N]\n"
      "  ompq_search --model=NAME --quant=qat|ptq --budget_mb=MiB --allocation=hessian\n"
      "              --weights=W.safetensors --data=IMAGENET_DIR|fashion-mnist[:DIR]");
  absl::ParseCommandLine(argc, argv);
  return ompq::run_app("ompq_search", ompq::run);
}
