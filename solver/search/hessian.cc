#include "solver/search/hessian.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "core/autograd.h"
#include "core/error.h"
#include "core/functional/elementwise.h"
#include "core/functional/reduce.h"
#include "core/functional/softmax.h"
#include "core/philox.h"
#include "core/random.h"
#include "layers/quant/quant_spec.h"
#include "layers/quant/weight_quantizer.h"

namespace ompq::solver {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// PyHessian's guard against a running mean of 0 in the relative change.
constexpr double kRelativeChangeFloor = 1e-6;

absl::Status check_units(const std::vector<std::vector<Tensor>>& units) {
  if (units.empty()) return absl::InvalidArgumentError("Hessian traces: no units");
  for (size_t i = 0; i < units.size(); ++i) {
    if (units[i].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Hessian traces: unit ", i, " has no tensors"));
    }
    for (const Tensor& t : units[i]) {
      if (!t.defined() || t.dtype() != DType::kF32 || !t.is_leaf() || !t.requires_grad() ||
          t.numel() == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("Hessian traces: unit ", i,
                         " has a tensor that is not a non-empty f32 leaf requiring grad"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status check_options(const HessianOptions& o) {
  if (o.max_iterations < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("Hessian traces: max_iterations ", o.max_iterations, " (expected >= 1)"));
  }
  if (!(std::isfinite(o.tolerance) && o.tolerance > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Hessian traces: tolerance ", o.tolerance, " (expected finite and > 0)"));
  }
  return absl::OkStatus();
}

// The units' tensors as host vectors, and back: the estimator does its arithmetic on the host in
// double and writes only whole f32 values, so that the originals come back bit for bit.
struct HostUnit {
  std::vector<Tensor> tensors;
  std::vector<std::vector<float>> values;
  int64_t numel = 0;
  double epsilon = 0.0;
};

void write_values(Tensor t, const std::vector<float>& values) {
  t.copy_(Tensor::from_vector<float>(values, t.shape()));
}

// Puts every tensor back to its original value when the estimate ends, thrown out of or not.
class RestoreOnExit {
 public:
  explicit RestoreOnExit(const std::vector<HostUnit>& units) : units_(units) {}
  ~RestoreOnExit() {
    for (const HostUnit& u : units_) {
      for (size_t k = 0; k < u.tensors.size(); ++k) {
        write_values(u.tensors[k], u.values[k]);
        u.tensors[k].zero_grad();
      }
    }
  }
  RestoreOnExit(const RestoreOnExit&) = delete;
  RestoreOnExit& operator=(const RestoreOnExit&) = delete;

 private:
  const std::vector<HostUnit>& units_;
};

// The gradient of `loss` w.r.t. every unit's tensors at w + sign * e v (per unit e), in the
// layout of HostUnit::values; a tensor the loss does not reach has gradient 0.
std::vector<std::vector<std::vector<float>>> gradient_at(
    std::vector<HostUnit>& units, const std::vector<std::vector<std::vector<float>>>& v,
    double sign, const LossFn& loss) {
  for (size_t i = 0; i < units.size(); ++i) {
    const HostUnit& u = units[i];
    for (size_t k = 0; k < u.tensors.size(); ++k) {
      std::vector<float> moved(u.values[k].size());
      for (size_t j = 0; j < moved.size(); ++j) {
        moved[j] = static_cast<float>(u.values[k][j] + sign * u.epsilon * v[i][k][j]);
      }
      write_values(u.tensors[k], moved);
      u.tensors[k].zero_grad();
    }
  }
  loss().backward();
  std::vector<std::vector<std::vector<float>>> grads(units.size());
  for (size_t i = 0; i < units.size(); ++i) {
    for (size_t k = 0; k < units[i].tensors.size(); ++k) {
      const Tensor g = units[i].tensors[k].grad();
      grads[i].push_back(g.defined() ? g.to_vector<float>()
                                     : std::vector<float>(units[i].values[k].size(), 0.0f));
    }
  }
  return grads;
}

}  // namespace

absl::StatusOr<HessianTraces> hutchinson_traces(const std::vector<std::vector<Tensor>>& units,
                                                const LossFn& loss, const HessianOptions& options) {
  OMPQ_RETURN_IF_ERROR(check_units(units));
  OMPQ_RETURN_IF_ERROR(check_options(options));
  const Clock::time_point start = Clock::now();
  std::vector<HostUnit> host(units.size());
  for (size_t i = 0; i < units.size(); ++i) {
    double squares = 0.0;
    for (const Tensor& t : units[i]) {
      host[i].tensors.push_back(t);
      host[i].values.push_back(t.to_vector<float>());
      for (float w : host[i].values.back()) squares += static_cast<double>(w) * w;
      host[i].numel += t.numel();
    }
    // ||v_i|| = sqrt(n_i) for Rademacher v; an all-zero unit steps by kEpsilonScale per element.
    const double norm = std::sqrt(squares);
    host[i].epsilon =
        kEpsilonScale * (norm > 0 ? norm / std::sqrt(static_cast<double>(host[i].numel)) : 1.0);
  }
  RestoreOnExit restore(host);

  Generator rademacher(options.seed);
  HessianTraces result;
  std::vector<double> sums(units.size(), 0.0), means(units.size(), 0.0);
  for (int it = 1; it <= options.max_iterations; ++it) {
    std::vector<std::vector<std::vector<float>>> v(units.size());
    for (size_t i = 0; i < units.size(); ++i) {
      for (const std::vector<float>& values : host[i].values) {
        const uint64_t first = rademacher.advance(values.size());
        std::vector<float> signs(values.size());
        for (size_t j = 0; j < signs.size(); ++j) {
          signs[j] = (philox_word(rademacher.seed(), first + j) & 1u) ? 1.0f : -1.0f;
        }
        v[i].push_back(std::move(signs));
      }
    }
    const auto plus = gradient_at(host, v, +1.0, loss);
    const auto minus = gradient_at(host, v, -1.0, loss);
    double largest_change = 0.0;
    for (size_t i = 0; i < units.size(); ++i) {
      double vhv = 0.0;
      for (size_t k = 0; k < v[i].size(); ++k) {
        for (size_t j = 0; j < v[i][k].size(); ++j) {
          vhv += v[i][k][j] * (static_cast<double>(plus[i][k][j]) - minus[i][k][j]);
        }
      }
      sums[i] += vhv / (2.0 * host[i].epsilon) / static_cast<double>(host[i].numel);
      const double mean = sums[i] / it;
      if (it > 1) {
        largest_change = std::max(largest_change, std::abs(mean - means[i]) /
                                                      (std::abs(means[i]) + kRelativeChangeFloor));
      }
      means[i] = mean;
    }
    result.iterations = it;
    result.relative_change = largest_change;
    if (it > 1 && largest_change < options.tolerance) {
      result.converged = true;
      break;
    }
  }
  result.average_trace = means;
  result.seconds = seconds_since(start);
  return result;
}

absl::StatusOr<HessianTraces> unit_hessian_traces(nn::Model& model, const SearchSpace& space,
                                                  const Tensor& images, const Tensor& labels,
                                                  const HessianOptions& options) {
  if (!images.defined() || images.dim() != 4 || images.size(0) < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("Hessian traces: expected calibration images [N, C, H, W] with N >= 1, got ",
                     images.defined() ? shape_str(images.shape()) : std::string("none")));
  }
  if (!labels.defined() || labels.dim() != 1 || labels.size(0) != images.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Hessian traces: expected one label per image (", images.size(0), "), got shape ",
        labels.defined() ? shape_str(labels.shape()) : std::string("none")));
  }
  std::map<std::string, Tensor> parameters;
  for (const auto& [name, t] : model.named_parameters()) parameters[name] = t;
  std::vector<std::vector<Tensor>> units;
  for (const SearchUnit& u : space.units) {
    units.emplace_back();
    for (const std::string& layer : u.layers) {
      auto it = parameters.find(layer + ".weight");
      if (it == parameters.end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Hessian traces: unit ", u.name, ": the model has no parameter ", layer, ".weight"));
      }
      units.back().push_back(it->second);
    }
  }
  // Only the units' weights take gradients; every flag and the model's mode come back as they were.
  std::vector<std::pair<Tensor, bool>> flags;
  for (auto& [name, t] : parameters) {
    flags.emplace_back(t, t.requires_grad());
    t.set_requires_grad(false);
  }
  for (const auto& unit : units) {
    for (const Tensor& t : unit) Tensor(t).set_requires_grad(true);
  }
  const bool was_training = model.is_training();
  model.eval();
  absl::StatusOr<HessianTraces> traces = hutchinson_traces(
      units, [&] { return cross_entropy(model(images), labels); }, options);
  model.train(was_training);
  for (auto& [t, requires] : flags) t.set_requires_grad(requires);
  return traces;
}

std::vector<std::vector<double>> quantization_costs(const nn::Model& model,
                                                    const SearchSpace& space,
                                                    const std::vector<double>& average_trace) {
  OMPQ_CHECK(average_trace.size() == space.units.size(),
             "quantization costs: ", average_trace.size(), " traces for ", space.units.size(),
             " units");
  std::map<std::string, Tensor> parameters;
  for (const auto& [name, t] : model.named_parameters()) parameters[name] = t;
  NoGradGuard no_grad;
  std::vector<std::vector<double>> costs;
  for (size_t i = 0; i < space.units.size(); ++i) {
    const SearchUnit& unit = space.units[i];
    std::vector<double> unit_costs;
    for (int bits = space.min_bits; bits <= space.max_bits; ++bits) {
      const nn::QuantSpec spec =
          space.mode == QuantMode::kPtq ? nn::ptq_weight_spec(bits) : nn::qat_weight_spec(bits);
      const nn::WeightRange range =
          space.mode == QuantMode::kPtq ? nn::WeightRange::kMse : nn::WeightRange::kMinMax;
      double perturbation = 0.0;
      for (const std::string& layer : unit.layers) {
        auto it = parameters.find(layer + ".weight");
        OMPQ_CHECK(it != parameters.end(), "quantization costs: unit ", unit.name,
                   ": the model has no parameter ", layer, ".weight");
        const Tensor& w = it->second;
        nn::WeightQuantizer quantizer(spec, range, spec.axis ? w.size(0) : 1);
        quantizer.to(w.device());
        perturbation += sum(square(quantizer.forward(w) - w)).item_double();
      }
      unit_costs.push_back(average_trace[i] * perturbation);
    }
    costs.push_back(std::move(unit_costs));
  }
  return costs;
}

absl::StatusOr<HessianSearchResult> hessian_search(nn::Model& model, const SearchSpace& space,
                                                   const Tensor& images, const Tensor& labels,
                                                   const HessianOptions& hessian,
                                                   const AllocationOptions& options) {
  OMPQ_RETURN_IF_ERROR(check_allocation_options(space, options));
  HessianSearchResult result;
  Clock::time_point start = Clock::now();
  OMPQ_ASSIGN_OR_RETURN(result.traces, unit_hessian_traces(model, space, images, labels, hessian));
  result.hessian_s = seconds_since(start);
  start = Clock::now();
  result.costs = quantization_costs(model, space, result.traces.average_trace);
  result.costs_s = seconds_since(start);
  start = Clock::now();
  OMPQ_ASSIGN_OR_RETURN(result.allocation, allocate_bits_by_cost(space, result.costs, options));
  result.solve_s = seconds_since(start);
  return result;
}

}  // namespace ompq::solver
