#include "layers/quant/act_quantizer.h"

#include "core/autograd.h"
#include "layers/quant/mse_range.h"

namespace ompq::nn {

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
    const ChannelRange r = channel_range(x, std::nullopt);
    running_min_.fill_(r.min[0]);
    running_max_.fill_(r.max[0]);
    write_range_params(spec_, params_from_range(r.min, r.max, spec_));
  }
  calibrated_ = true;
}

// HAWQ-V3's QuantAct: the first batch (detected as an empty range) sets the range, later ones move
// it by the moving average.
void ActivationQuantizer::observe(const Tensor& x) {
  if (running_min_.item<float>() == running_max_.item<float>()) {
    calibrate(x);
    return;
  }
  NoGradGuard no_grad;
  const ChannelRange batch = channel_range(x, std::nullopt);
  const double m = options_.momentum;
  const double lo = m * running_min_.item<float>() + (1 - m) * batch.min[0];
  const double hi = m * running_max_.item<float>() + (1 - m) * batch.max[0];
  running_min_.fill_(lo);
  running_max_.fill_(hi);
  write_range_params(spec_, params_from_range({lo}, {hi}, spec_));
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
