#include "layers/quant/weight_quantizer.h"

#include <algorithm>

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
  if (range_ == WeightRange::kMinMax || !calibrated()) calibrate(w);
  return fake_quantize(w, spec_in_dtype(spec_, w.dtype()));
}

}  // namespace ompq::nn
