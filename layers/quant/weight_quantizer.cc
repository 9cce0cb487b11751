#include "layers/quant/weight_quantizer.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/functional/adaround.h"
#include "core/ops/adaround.h"
#include "layers/quant/mse_range.h"

namespace ompq::nn {

WeightQuantizer::WeightQuantizer(const QuantSpec& spec, WeightRange range, int64_t channels)
    : spec_(spec), range_(range) {
  check_spec(spec, "WeightQuantizer");
  OMPQ_CHECK(!spec.scale.defined(),
             "WeightQuantizer: the spec must be a template (its scale is "
             "the quantizer's own)");
  OMPQ_CHECK(channels > 0 && (spec.axis || channels == 1), "WeightQuantizer: ", channels,
             " channels for a ", spec.str(), " quantizer");
  // A zero scale marks a quantizer whose range was never set.
  const Shape shape = spec.axis ? Shape{channels} : Shape{};
  spec_.scale = register_buffer("scale", Tensor::zeros(shape));
  if (!spec.symmetric) spec_.zero_point = register_buffer("zero_point", Tensor::zeros(shape));
}

bool WeightQuantizer::calibrated() {
  if (!calibrated_) {
    std::vector<float> s = spec_.scale.to_vector<float>();
    calibrated_ = std::all_of(s.begin(), s.end(), [](float v) { return v > 0; });
  }
  return calibrated_;
}

void WeightQuantizer::calibrate(const Tensor& w) {
  OMPQ_CHECK(!spec_.axis ||
                 (w.dim() > 0 &&
                  w.size(wrap_dim(*spec_.axis, w.dim(), "WeightQuantizer")) == spec_.scale.size(0)),
             "WeightQuantizer: weight of shape ", shape_str(w.shape()), " for a ", spec_.str(),
             " quantizer of ", spec_.scale.numel(), " channels");
  if (range_ == WeightRange::kMinMax) {
    const ChannelRange r = channel_range(w, spec_.axis);
    write_range_params(spec_, params_from_range(r.min, r.max, spec_));
  } else {
    write_range_params(spec_, mse_range_params(w, spec_));
  }
  calibrated_ = true;
}

Tensor WeightQuantizer::forward(const Tensor& w) {
  if (!enabled_) return w;
  if (!adaptive_rounding()) {
    if (range_ == WeightRange::kMinMax || !calibrated()) calibrate(w);
    return fake_quantize(w, spec_in_dtype(spec_, w.dtype()));
  }
  OMPQ_CHECK(w.shape() == alpha_.shape(), "WeightQuantizer: weight of shape ", shape_str(w.shape()),
             " for adaptive rounding started on a weight of shape ", shape_str(alpha_.shape()));
  const QuantSpec spec = spec_in_dtype(spec_, w.dtype());
  return adaround_quantize(w, alpha_.to(w.dtype()), spec.scale, spec.zero_point, spec.axis,
                           spec.range(), hard_);
}

void WeightQuantizer::start_adaptive_rounding(const Tensor& w) {
  // A min/max range moves with the weights at every forward; AdaRound needs a fixed grid.
  OMPQ_CHECK(range_ == WeightRange::kMse,
             "WeightQuantizer: adaptive rounding needs a fixed (MSE-searched) range, not min/max");
  NoGradGuard no_grad;
  if (!calibrated()) calibrate(w);
  alpha_ = ops::adaround_init(w.detach(), spec_in_dtype(spec_, w.dtype()).scale, spec_.axis)
               .to(spec_.scale.dtype());
  alpha_.set_requires_grad(true);
  hard_ = false;
}

void WeightQuantizer::set_rounding_hard(bool hard) {
  OMPQ_CHECK(adaptive_rounding(), "WeightQuantizer: set_rounding_hard without adaptive rounding");
  hard_ = hard;
}

void WeightQuantizer::stop_adaptive_rounding() {
  alpha_ = Tensor();
  hard_ = false;
}

Tensor WeightQuantizer::rounding_regularizer(double beta) const {
  OMPQ_CHECK(adaptive_rounding(),
             "WeightQuantizer: rounding_regularizer without adaptive rounding");
  return adaround_regularizer(alpha_, beta);
}

}  // namespace ompq::nn
