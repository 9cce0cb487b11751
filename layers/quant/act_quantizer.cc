#include "layers/quant/act_quantizer.h"

#include <vector>

#include "core/autograd.h"
#include "core/functional/concat.h"
#include "core/ops/reduce.h"
#include "layers/quant/mse_range.h"

namespace ompq::nn {
namespace {

struct ObservedRanges {
  double running_min, running_max;  // the quantizer's range before this batch
  double batch_min, batch_max;      // x's
};

// The running range and x's range read to the host together: on a GPU the min and max reduce on
// the device and one transfer of four values is the step's only synchronization.
ObservedRanges observe_ranges(const Tensor& running_min, const Tensor& running_max,
                              const Tensor& x) {
  const Tensor flat = x.detach().reshape({-1});
  auto entry = [](const Tensor& t) { return t.reshape({1}).to(DType::kF64); };
  const std::vector<double> v =
      cat({entry(running_min), entry(running_max), entry(ops::amin(flat, {0}, false)),
           entry(ops::amax(flat, {0}, false))},
          0)
          .to_vector<double>();
  return {v[0], v[1], v[2], v[3]};
}

}  // namespace

ActivationQuantizer::ActivationQuantizer(const QuantSpec& spec, ActRange range,
                                         const ActQuantOptions& options)
    : spec_(spec), range_(range), options_(options) {
  check_spec(spec, "ActivationQuantizer");
  OMPQ_CHECK(!spec.axis, "ActivationQuantizer: activations are quantized per tensor, not ",
             spec.str());
  OMPQ_CHECK(!spec.scale.defined(),
             "ActivationQuantizer: the spec must be a template (its scale "
             "is the quantizer's own)");
  OMPQ_CHECK(options.momentum >= 0 && options.momentum < 1, "ActivationQuantizer: momentum ",
             options.momentum, " (expected in [0, 1))");
  // A zero scale marks a quantizer that has seen no data yet.
  if (range == ActRange::kLearnedStep) {
    spec_.scale = register_parameter("scale", Tensor::zeros({}));
  } else {
    spec_.scale = register_buffer("scale", Tensor::zeros({}));
    running_min_ = register_buffer("running_min", Tensor::zeros({}));
    running_max_ = register_buffer("running_max", Tensor::zeros({}));
  }
  if (!spec.symmetric) spec_.zero_point = register_buffer("zero_point", Tensor::zeros({}));
}

bool ActivationQuantizer::calibrated() {
  if (!calibrated_) calibrated_ = spec_.scale.item<float>() > 0;
  return calibrated_;
}

void ActivationQuantizer::calibrate(const Tensor& x) {
  OMPQ_CHECK(x.numel() > 0, "ActivationQuantizer: calibration on an empty tensor of shape ",
             shape_str(x.shape()));
  NoGradGuard no_grad;
  if (range_ == ActRange::kLearnedStep) {
    write_range_params(spec_, mse_range_params(x, spec_));
  } else {
    const ObservedRanges r = observe_ranges(running_min_, running_max_, x);
    set_range(r.batch_min, r.batch_max);
  }
  calibrated_ = true;
}

void ActivationQuantizer::set_range(double lo, double hi) {
  running_min_.fill_(lo);
  running_max_.fill_(hi);
  write_range_params(spec_, params_from_range({lo}, {hi}, spec_));
}

// HAWQ-V3's QuantAct: the first batch (detected as an empty range) sets the range, later ones move
// it by the moving average. The arithmetic is in double on the host whatever x's device, so that
// a GPU run tracks the very range a CPU run does.
void ActivationQuantizer::observe(const Tensor& x) {
  OMPQ_CHECK(x.numel() > 0, "ActivationQuantizer: an empty batch of shape ", shape_str(x.shape()));
  NoGradGuard no_grad;
  const ObservedRanges r = observe_ranges(running_min_, running_max_, x);
  if (r.running_min == r.running_max) {
    set_range(r.batch_min, r.batch_max);
  } else {
    const double m = options_.momentum;
    set_range(m * r.running_min + (1 - m) * r.batch_min, m * r.running_max + (1 - m) * r.batch_max);
  }
  calibrated_ = true;
}

Tensor ActivationQuantizer::forward(const Tensor& x) {
  if (!enabled_) return x;
  if (range_ == ActRange::kEmaMinMax && !frozen_) {
    observe(x);
  } else if (!calibrated()) {
    OMPQ_CHECK(range_ == ActRange::kLearnedStep,
               "ActivationQuantizer: frozen before observing any data (run calibration batches "
               "unfrozen first)");
    calibrate(x);
  }
  return fake_quantize(x, spec_in_dtype(spec_, x.dtype()), options_.clip_gradient);
}

}  // namespace ompq::nn
