// WeightQuantizer: fake-quantizes a layer's weight with a QuantSpec whose scale and zero point it
// owns as buffers ("scale", "zero_point" when affine). Two ways to set them:
//   kMinMax (QAT, HAWQ-V3): from the weight's per-channel (or whole-tensor) min and max at every
//           forward, so the grid follows the weights as they train;
//   kMse    (PTQ, BRECQ):   BRECQ's Lp-2.4 range search (mse_range.h) at the first forward (or an
//           explicit calibrate()), then fixed; a loaded checkpoint's positive scale counts as done.
// The weight's gradient is the clipped straight-through estimate; the range gets none.
#pragma once

#include <cstdint>

#include "layers/module.h"
#include "layers/quant/quant_spec.h"

namespace ompq::nn {

enum class WeightRange { kMinMax, kMse };

class WeightQuantizer : public Module {
 public:
  // `spec`: a template (tensors undefined); per-channel specs quantize along spec.axis, which has
  // `channels` entries (1 for a per-tensor spec).
  WeightQuantizer(const QuantSpec& spec, WeightRange range, int64_t channels);

  // The fake-quantized weight (w itself when disabled).
  Tensor forward(const Tensor& w) override;
  // Sets the scale and zero point from w now.
  void calibrate(const Tensor& w);
  // The spec with this quantizer's current tensors (calibrate first for kMse).
  const QuantSpec& spec() const { return spec_; }
  WeightRange range_method() const { return range_; }

  // Disabled, forward() passes the weight through (BRECQ's set_quant_state(weight_quant=False)).
  void set_enabled(bool enabled) { enabled_ = enabled; }
  bool enabled() const { return enabled_; }

 private:
  bool calibrated();

  QuantSpec spec_;
  WeightRange range_;
  bool enabled_ = true;
  bool calibrated_ = false;
};

}  // namespace ompq::nn
