#include "solver/quantize/ptq.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/autograd.h"
#include "core/functional/concat.h"
#include "core/functional/elementwise.h"
#include "core/functional/reduce.h"
#include "core/timing.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/lr_schedule.h"
#include "layers/optim.h"
#include "layers/quant/adaround.h"
#include "solver/quantize/blocks.h"
#include "solver/quantize/ptq_checkpoint.h"

namespace ompq::solver {
namespace {

using Clock = std::chrono::steady_clock;

// Thrown by an input observer once it has its batch, so that the forward stops at the unit (as
// BRECQ's StopForwardException does).
struct StopForward {};

// Turns requires_grad off for every parameter of the model while it lives, so that backward only
// computes what a reconstruction optimizes; restores the flags when destroyed.
class FrozenParameters {
 public:
  explicit FrozenParameters(const nn::Module& model) {
    for (Tensor& p : model.parameters()) {
      saved_.emplace_back(p, p.requires_grad());
      p.set_requires_grad(false);
    }
  }
  ~FrozenParameters() {
    for (auto& [p, requires_grad] : saved_) p.set_requires_grad(requires_grad);
  }
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  std::vector<std::pair<Tensor, bool>> saved_;
};

// Ends adaptive rounding (back to nearest) of every layer still rounding adaptively when
// destroyed: after an error the model is a plain quantized model again.
class AdaptiveRoundingCleanup {
 public:
  explicit AdaptiveRoundingCleanup(const nn::QuantizedLayers& layers) : layers_(layers) {}
  ~AdaptiveRoundingCleanup() {
    for (const auto& [name, layer] : layers_) layer->weight_quantizer().stop_adaptive_rounding();
  }
  AdaptiveRoundingCleanup(const AdaptiveRoundingCleanup&) = delete;
  AdaptiveRoundingCleanup& operator=(const AdaptiveRoundingCleanup&) = delete;

 private:
  const nn::QuantizedLayers& layers_;
};

// The input of `layer` for every image, from forwards of the model in batches that stop there.
Tensor capture_inputs(nn::Model& model, nn::QuantizedLayer& layer, const Tensor& images,
                      int64_t batch_size) {
  NoGradGuard no_grad;
  std::vector<Tensor> parts;
  layer.set_input_observer([&parts](const Tensor& x) {
    parts.push_back(x.detach());
    throw StopForward{};
  });
  struct RemoveObserver {
    nn::QuantizedLayer& layer;
    ~RemoveObserver() { layer.set_input_observer(nullptr); }
  } remove{layer};
  const int64_t n = images.size(0);
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const size_t before = parts.size();
    try {
      model.forward(images.slice(0, begin, std::min(n, begin + batch_size)));
    } catch (const StopForward&) {
    }
    OMPQ_CHECK(parts.size() == before + 1,
               "reconstruct_ptq: the model's forward did not reach a quantized layer it contains");
  }
  return parts.size() == 1 ? parts[0].contiguous() : cat(parts, 0);
}

// The unit's outputs for `inputs`, in batches, without autograd.
Tensor run_unit(nn::Module& unit, const Tensor& inputs, int64_t batch_size) {
  NoGradGuard no_grad;
  std::vector<Tensor> parts;
  const int64_t n = inputs.size(0);
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    parts.push_back(unit.forward(inputs.slice(0, begin, std::min(n, begin + batch_size))));
  }
  return parts.size() == 1 ? parts[0].contiguous() : cat(parts, 0);
}

// BRECQ's lp_loss(reduction="none"): the mean over images and pixels of the sum over channels of
// |out - target|^p.
Tensor reconstruction_loss(const Tensor& out, const Tensor& target, double p) {
  const Tensor diff = sub(out, target);
  const Tensor e = p == 2.0 ? square(diff) : pow(abs(diff), p);
  return div(sum(e), static_cast<double>(out.numel() / out.size(1)));
}

// The loss over all cached inputs (exact: the per-batch sums are added before dividing).
double reconstruction_error(nn::Module& unit, const Tensor& inputs, const Tensor& targets,
                            int64_t batch_size, double p) {
  NoGradGuard no_grad;
  double total = 0;
  const int64_t n = inputs.size(0);
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t end = std::min(n, begin + batch_size);
    const Tensor out = unit.forward(inputs.slice(0, begin, end));
    total += reconstruction_loss(out, targets.slice(0, begin, end), p).item_double() *
             static_cast<double>(end - begin);
  }
  return total / static_cast<double>(n);
}

// Mini-batches of cached rows drawn without replacement within a batch (BRECQ: the first
// batch_size entries of a fresh randperm at every iteration).
class BatchSampler {
 public:
  BatchSampler(int64_t rows, int64_t batch_size, uint64_t seed)
      : order_(rows), batch_size_(std::min(rows, batch_size)), rng_(seed) {
    std::iota(order_.begin(), order_.end(), 0);
  }
  // Draws the next batch's rows.
  void next() {
    for (int64_t i = 0; i < batch_size_; ++i) {
      std::uniform_int_distribution<int64_t> pick(i, static_cast<int64_t>(order_.size()) - 1);
      std::swap(order_[i], order_[pick(rng_)]);
    }
  }
  // The current batch's rows of t.
  Tensor gather(const Tensor& t) const {
    Shape shape = t.shape();
    shape[0] = batch_size_;
    Tensor out = Tensor::empty(shape, t.dtype(), t.device());
    for (int64_t i = 0; i < batch_size_; ++i) out.select(0, i).copy_(t.select(0, order_[i]));
    return out;
  }

 private:
  std::vector<int64_t> order_;
  int64_t batch_size_;
  std::mt19937_64 rng_;
};

// The real-valued weight a quantized layer reads: its wrapped Conv2d's or Linear's.
Tensor layer_weight(const std::map<std::string, std::shared_ptr<nn::Module>>& modules,
                    const std::string& name) {
  const std::shared_ptr<nn::Module>& m = modules.at(name);
  if (auto conv = std::dynamic_pointer_cast<nn::Conv2d>(m)) return conv->weight();
  return std::dynamic_pointer_cast<nn::Linear>(m)->weight();
}

absl::Status check_options(const PtqOptions& o) {
  auto bad = [](auto... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  if (o.weight_iterations < 0 || o.activation_iterations < 0) {
    return bad("reconstruct_ptq: iterations ", o.weight_iterations, " (weights) and ",
               o.activation_iterations, " (activations) (expected >= 0)");
  }
  if (o.batch_size < 1 || o.init_images < 1 || o.progress_interval < 1) {
    return bad("reconstruct_ptq: batch_size ", o.batch_size, ", init_images ", o.init_images,
               ", progress_interval ", o.progress_interval, " (expected >= 1)");
  }
  if (!(o.weight_lr > 0) || !(o.activation_lr > 0)) {
    return bad("reconstruct_ptq: learning rates ", o.weight_lr, " (weights) and ", o.activation_lr,
               " (activations) (expected > 0)");
  }
  if (!(o.rounding_loss_weight >= 0) || !(o.activation_p > 0)) {
    return bad("reconstruct_ptq: rounding_loss_weight ", o.rounding_loss_weight,
               " (expected >= 0) and activation_p ", o.activation_p, " (expected > 0)");
  }
  if (o.weight_iterations > 0) {
    nn::AdaRoundSchedule schedule{o.weight_iterations, o.warmup, o.beta_start, o.beta_end};
    try {
      schedule.check();
    } catch (const Error& e) {
      return bad("reconstruct_ptq: ", e.what());
    }
  }
  return absl::OkStatus();
}

absl::Status check_inputs(const nn::Model& model, const nn::QuantizedLayers& layers,
                          const Tensor& images) {
  auto bad = [](auto... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  if (!images.defined() || images.numel() == 0) {
    return bad("reconstruct_ptq: no calibration images (expected a [N, C, H, W] batch, N >= 1)");
  }
  const Shape expected = model.input_shape();
  if (images.dim() != 4 || images.size(1) != expected[0] || !is_floating(images.dtype())) {
    return bad("reconstruct_ptq: calibration images of shape ", shape_str(images.shape()),
               " and dtype ", dtype_name(images.dtype()), " (expected floating [N, ", expected[0],
               ", H, W]; the model takes ", shape_str(expected), ")");
  }
  if (layers.empty()) {
    return bad("reconstruct_ptq: no quantized layers (run quantize_model with the PTQ scheme)");
  }
  for (const auto& [name, layer] : layers) {
    const nn::ActivationQuantizer* input = layer->input_quantizer();
    if (layer->weight_quantizer().range_method() != nn::WeightRange::kMse ||
        (input != nullptr && input->range_method() != nn::ActRange::kLearnedStep)) {
      return bad("reconstruct_ptq: layer \"", name,
                 "\" is not quantized with the PTQ scheme (MSE weight ranges, learned activation "
                 "steps)");
    }
  }
  const std::vector<Tensor> params = model.parameters();
  if (!params.empty() && params[0].device() != images.device()) {
    return bad("reconstruct_ptq: calibration images on ", images.device().str(), " for a model on ",
               params[0].device().str());
  }
  return absl::OkStatus();
}

void report(const PtqOptions& options, PtqProgress progress) {
  if (!options.on_progress) return;
  if (progress.iteration % options.progress_interval == 0 ||
      progress.iteration == progress.iterations) {
    options.on_progress(progress);
  }
}

// Phase 1 for one unit: AdaRound of all its layers' weights, then hard rounding.
void reconstruct_weights(nn::Model& model, const ReconstructionUnit& unit, const Tensor& images,
                         const PtqOptions& options, PtqProgress progress, PtqUnitResult& result) {
  nn::QuantizedLayer& first = *unit.layers.front().second;
  nn::set_quantization_enabled(model, /*weights=*/false, /*activations=*/false);
  const Tensor targets = run_unit(
      *unit.module, capture_inputs(model, first, images, options.batch_size), options.batch_size);
  nn::set_quantization_enabled(model, /*weights=*/true, /*activations=*/false);
  const Tensor inputs = capture_inputs(model, first, images, options.batch_size);
  result.nearest_error =
      reconstruction_error(*unit.module, inputs, targets, options.batch_size, 2.0);

  std::vector<Tensor> alphas;
  for (const auto& [name, layer] : unit.layers) {
    nn::WeightQuantizer& q = layer->weight_quantizer();
    q.start_adaptive_rounding(layer->weight_and_bias().weight.detach());
    alphas.push_back(q.rounding_variables());
  }
  AdamOptions adam;
  adam.lr = options.weight_lr;
  nn::Adam optimizer(alphas, adam);
  const nn::AdaRoundSchedule schedule{options.weight_iterations, options.warmup, options.beta_start,
                                      options.beta_end};
  BatchSampler sampler(inputs.size(0), options.batch_size, options.seed + progress.unit_index);
  progress.iterations = options.weight_iterations;
  for (int64_t t = 1; t <= options.weight_iterations; ++t) {
    sampler.next();
    const Tensor rec = reconstruction_loss(unit.module->forward(sampler.gather(inputs)),
                                           sampler.gather(targets), 2.0);
    Tensor loss = rec;
    double rounding = 0.0;
    if (schedule.regularized(t) && options.rounding_loss_weight > 0) {
      const double beta = schedule.beta(t);
      Tensor reg;
      for (const auto& [name, layer] : unit.layers) {
        const Tensor r = layer->weight_quantizer().rounding_regularizer(beta);
        reg = reg.defined() ? add(reg, r) : r;
      }
      const Tensor weighted = mul(reg, options.rounding_loss_weight);
      rounding = weighted.item_double();
      loss = add(rec, weighted);
    }
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    progress.iteration = t;
    progress.reconstruction_loss = rec.item_double();
    progress.rounding_loss = rounding;
    report(options, progress);
  }
  for (const auto& [name, layer] : unit.layers) layer->weight_quantizer().set_rounding_hard(true);
  result.adaround_error =
      reconstruction_error(*unit.module, inputs, targets, options.batch_size, 2.0);
  // Too few iterations can leave the hard decisions worse than nearest rounding on the very
  // objective they were learned for; then the unit keeps nearest rounding.
  if (result.adaround_error > result.nearest_error) {
    for (const auto& [name, layer] : unit.layers)
      layer->weight_quantizer().stop_adaptive_rounding();
    result.kept_nearest = true;
  }
}

// Phase 2 for one unit: the step sizes of its layers' input quantizers.
void reconstruct_activations(nn::Model& model, const ReconstructionUnit& unit, const Tensor& images,
                             const PtqOptions& options, PtqProgress progress) {
  std::vector<Tensor> steps;
  for (const auto& [name, layer] : unit.layers) {
    if (nn::ActivationQuantizer* q = layer->input_quantizer()) steps.push_back(q->spec().scale);
  }
  if (steps.empty() || options.activation_iterations == 0) return;
  nn::QuantizedLayer& first = *unit.layers.front().second;
  nn::set_quantization_enabled(model, /*weights=*/false, /*activations=*/false);
  const Tensor inputs = capture_inputs(model, first, images, options.batch_size);
  const Tensor targets = run_unit(*unit.module, inputs, options.batch_size);
  nn::set_quantization_enabled(model, /*weights=*/true, /*activations=*/true);

  for (Tensor& s : steps) s.set_requires_grad(true);
  AdamOptions adam;
  adam.lr = options.activation_lr;
  nn::Adam optimizer(steps, adam);
  const nn::CosineLr schedule(options.activation_iterations);
  BatchSampler sampler(inputs.size(0), options.batch_size,
                       options.seed + 7919 * (progress.unit_index + 1));
  progress.iterations = options.activation_iterations;
  for (int64_t t = 1; t <= options.activation_iterations; ++t) {
    sampler.next();
    const Tensor loss = reconstruction_loss(unit.module->forward(sampler.gather(inputs)),
                                            sampler.gather(targets), options.activation_p);
    schedule.apply(optimizer, t - 1);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    {
      // A step size must stay positive; HAWQ's floor for an empty range.
      NoGradGuard no_grad;
      for (Tensor& s : steps) {
        if (!(s.item<float>() > 1e-8f)) Tensor(s).fill_(1e-8);
      }
    }
    progress.iteration = t;
    progress.reconstruction_loss = loss.item_double();
    report(options, progress);
  }
  for (Tensor& s : steps) s.set_requires_grad(false);
}

// One forward of the first `count` images (quantizers that have seen no data set their ranges).
void initialize_ranges(nn::Model& model, const Tensor& images, int64_t count) {
  NoGradGuard no_grad;
  model.forward(images.slice(0, 0, std::min(count, images.size(0))));
}

}  // namespace

PtqOptions brecq_reference_options() {
  PtqOptions options;
  options.weight_iterations = 20000;
  options.weight_lr = 1e-3;
  options.activation_iterations = 5000;
  return options;
}

nn::QuantizeOptions ptq_quantize_options(const nn::Model& model, int act_bits) {
  const std::vector<nn::QuantizableLayer> layers = model.quantizable_layers();
  OMPQ_CHECK(!layers.empty(), "ptq_quantize_options: the model has no quantizable layer");
  nn::QuantizeOptions options;
  options.scheme = nn::QuantScheme::kPtq;
  options.act_bits = act_bits;
  options.float_inputs = {layers.front().name};
  if (act_bits > 0) options.input_bits[layers.back().name] = 8;
  return options;
}

absl::StatusOr<PtqResult> reconstruct_ptq(nn::Model& model, const nn::QuantizedLayers& layers,
                                          const Tensor& calibration_images,
                                          const PtqOptions& options) {
  if (absl::Status s = check_options(options); !s.ok()) return s;
  if (absl::Status s = check_inputs(model, layers, calibration_images); !s.ok()) return s;
  try {
    std::vector<ReconstructionUnit> units = reconstruction_units(model, layers);
    // The reference never reconstructs the first layer (its 8-bit-input stem).
    if (!options.reconstruct_stem && units.front().layers.size() == 1 &&
        units.front().layers.front().first == layers.front().first) {
      units.erase(units.begin());
    }
    std::map<std::string, std::shared_ptr<nn::Module>> modules;
    for (const auto& [path, module] : model.named_modules()) modules.emplace(path, module);

    FrozenParameters frozen(model);
    AdaptiveRoundingCleanup cleanup(layers);  // also after a failed load of the checkpoint
    model.eval();

    const int64_t num_units = static_cast<int64_t>(units.size());
    PtqCheckpoint state;
    for (const ReconstructionUnit& unit : units) {
      PtqUnitResult& u = state.result.units.emplace_back();
      u.name = unit.name;
      for (const auto& [name, layer] : unit.layers) u.layers.push_back(name);
    }
    // Taken before anything changes the model, the same in a first run and in its reruns.
    const bool resumable = !options.checkpoint.empty();
    const PtqIdentity identity =
        resumable ? ptq_identity(model, units, calibration_images, options) : PtqIdentity{};
    const bool resumed = resumable && std::filesystem::exists(options.checkpoint);
    if (resumed) {
      OMPQ_RETURN_IF_ERROR(
          load_ptq_checkpoint(options.checkpoint, model, layers, identity, &state));
      if (options.on_resume) options.on_resume(state.phase, state.units_done, num_units);
    }
    auto finished_unit = [&](int phase, int64_t k, double seconds) {
      state.result.units[k].seconds += seconds;
      (phase == 1 ? state.result.weight_seconds : state.result.activation_seconds) += seconds;
      state.phase = phase;
      state.units_done = k + 1;
      if (!resumable || !options.write_checkpoint) return absl::OkStatus();
      return save_ptq_checkpoint(options.checkpoint, model, layers, identity, state);
    };

    // The weight ranges were set before the first unit finished (a resumed model has them).
    nn::set_quantization_enabled(model, /*weights=*/true, /*activations=*/false);
    if (!resumed) initialize_ranges(model, calibration_images, options.init_images);

    PtqProgress progress;
    progress.num_units = num_units;
    for (int64_t k = state.phase == 1 ? state.units_done : num_units; k < num_units; ++k) {
      const Clock::time_point start = Clock::now();
      progress.phase = 1;
      progress.unit = units[k].name;
      progress.unit_index = k;
      if (options.weight_iterations > 0) {
        reconstruct_weights(model, units[k], calibration_images, options, progress,
                            state.result.units[k]);
      }
      OMPQ_RETURN_IF_ERROR(finished_unit(1, k, seconds_since(start)));
    }

    const Clock::time_point activations_start = Clock::now();
    nn::set_quantization_enabled(model, /*weights=*/true, /*activations=*/true);
    if (state.phase == 1) {  // the activation ranges are unset until phase 2 begins
      initialize_ranges(model, calibration_images, options.init_images);
      state.result.activation_seconds += seconds_since(activations_start);
    }
    if (options.reconstruct_activations) {
      for (int64_t k = state.phase == 2 ? state.units_done : 0; k < num_units; ++k) {
        const Clock::time_point start = Clock::now();
        progress.phase = 2;
        progress.unit = units[k].name;
        progress.unit_index = k;
        progress.rounding_loss = 0.0;
        reconstruct_activations(model, units[k], calibration_images, options, progress);
        OMPQ_RETURN_IF_ERROR(finished_unit(2, k, seconds_since(start)));
      }
    }

    for (const ReconstructionUnit& unit : units) {
      for (const auto& [name, layer] : unit.layers) {
        if (layer->weight_quantizer().adaptive_rounding()) {
          nn::bake_adaptive_rounding(*layer, layer_weight(modules, name));
        }
      }
    }
    nn::set_quantization_enabled(model, /*weights=*/true, /*activations=*/true);
    return std::move(state.result);
  } catch (const Error& e) {
    return absl::InvalidArgumentError(absl::StrCat("reconstruct_ptq: ", e.what()));
  }
}

}  // namespace ompq::solver
