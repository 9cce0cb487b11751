#include "solver/search/search.h"

#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/timing.h"
#include "solver/capture/features.h"
#include "solver/search/orm.h"

namespace ompq::solver {
namespace {

using Clock = std::chrono::steady_clock;

absl::Status with_model_name(const absl::Status& status, const std::string& model_name) {
  if (status.ok() || model_name.empty()) return status;
  return absl::Status(status.code(), absl::StrCat(model_name, ": ", status.message()));
}

absl::Status check_images(const Tensor& images, const std::string& solver) {
  if (!images.defined()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ", solver, " solver needs images (the projection solver does not)"));
  }
  if (images.dim() != 4 || images.size(0) < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("search images: expected a batch [N, C, H, W] with N >= 2, got shape ",
                     shape_str(images.shape())));
  }
  return absl::OkStatus();
}

// Waits until `t` is computed: a GPU runs the forward pass asynchronously, and reading one of the
// feature's values to the host is what ends it (on the CPU the value is there already).
void wait_for(const Tensor& t) {
  Tensor element = t;
  while (element.dim() > 0) element = element.select(0, 0);
  element.item_double();
}

// Features -> Gram matrices -> ORM -> importance, into `result`. The forward pass up to each
// feature is waited for before its Gram matrix is timed, so that on a GPU too each phase's time is
// its own.
void measure_orthogonality(nn::Model& model, const Tensor& images, const SearchOptions& options,
                           SearchResult* result) {
  const std::vector<SearchUnit>& units = result->space.units;
  std::vector<Tensor> grams;
  double gram_s = 0.0;
  const Clock::time_point start = Clock::now();
  capture_features(model, images, options.mode, [&](const std::string& unit, const Tensor& f) {
    OMPQ_CHECK(grams.size() < units.size() && unit == units[grams.size()].name,
               "search: feature of \"", unit, "\" where the search space has ",
               grams.size() < units.size() ? units[grams.size()].name : "no more units");
    wait_for(f);
    const Clock::time_point gram_start = Clock::now();
    grams.push_back(gram_matrix(f));
    gram_s += seconds_since(gram_start);
  });
  OMPQ_CHECK(grams.size() == units.size(), "search: ", grams.size(), " features for ", units.size(),
             " searched units");
  result->timings.features_s = seconds_since(start) - gram_s;

  const Clock::time_point orm_start = Clock::now();
  result->orm = orthogonality_matrix(grams);
  result->gamma = orthogonality_sums(result->orm);
  result->log_theta = log_importance(result->gamma, options.beta);
  result->log_weights = log_layer_weights(result->log_theta);
  result->timings.orm_s = gram_s + seconds_since(orm_start);
}

absl::StatusOr<SearchResult> run_search(nn::Model& model, const Tensor& images,
                                        const SearchOptions& options) {
  const bool needs_features = options.allocation.solver != SolverKind::kProjection;
  if (needs_features) {
    OMPQ_RETURN_IF_ERROR(check_images(images, solver_name(options.allocation.solver)));
    if (!(std::isfinite(options.beta) && options.beta >= 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("beta ", options.beta, " (expected finite and >= 0)"));
    }
  }
  const Shape input = images.defined() ? images.shape() : Shape{0, 0, 0, 0};
  const Shape model_input = model.input_shape();
  const int64_t height = images.defined() ? input[2] : model_input[1];
  const int64_t width = images.defined() ? input[3] : model_input[2];
  SearchResult result;
  OMPQ_ASSIGN_OR_RETURN(result.space, build_search_space(model, options.mode, height, width));
  OMPQ_RETURN_IF_ERROR(check_allocation_options(result.space, options.allocation));
  if (needs_features) measure_orthogonality(model, images, options, &result);

  const Clock::time_point solve_start = Clock::now();
  OMPQ_ASSIGN_OR_RETURN(result.allocation,
                        allocate_bits(result.space, result.log_weights, options.allocation));
  result.timings.solve_s = seconds_since(solve_start);
  return result;
}

}  // namespace

absl::StatusOr<SearchResult> search(nn::Model& model, const Tensor& images,
                                    const SearchOptions& options) {
  absl::StatusOr<SearchResult> result = run_search(model, images, options);
  if (!result.ok()) return with_model_name(result.status(), options.model_name);
  return result;
}

}  // namespace ompq::solver
