// ActivationQuantizer: fake-quantizes a layer's input with a per-tensor QuantSpec whose scale (and
// zero point, when affine) it owns. Two ways to set them:
//   kEmaMinMax   (QAT, HAWQ-V3 QuantAct): the range [running_min, running_max] (buffers) starts at
//                the first batch's min and max and then follows them with an exponential moving
//                average, r = momentum * r + (1 - momentum) * batch, momentum 0.99; the scale and
//                zero point ("scale", "zero_point" buffers) come from the range at every forward.
//                Ranges keep updating whatever the train/eval mode (HAWQ trains in eval mode with
//                fixed BN) until freeze(), which evaluation uses.
//   kLearnedStep (PTQ, BRECQ): BRECQ's Lp-2.4 range search on the first batch (or calibrate())
//                sets the scale, a parameter learned through the LSQ gradient from then on, and the
//                zero point, a fixed buffer.
#pragma once

#include "layers/module.h"
#include "layers/quant/quant_spec.h"

namespace ompq::nn {

enum class ActRange { kEmaMinMax, kLearnedStep };

struct ActQuantOptions {
  double momentum = 0.99;     // kEmaMinMax
  bool clip_gradient = true;  // false: HAWQ-V3's unclipped straight-through estimator
};

class ActivationQuantizer : public Module {
 public:
  // `spec`: a per-tensor template (tensors undefined).
  ActivationQuantizer(const QuantSpec& spec, ActRange range, const ActQuantOptions& options = {});

  // The fake-quantized input (x itself when disabled).
  Tensor forward(const Tensor& x) override;
  // kEmaMinMax: restarts the range at x's; kLearnedStep: searches the scale for x.
  void calibrate(const Tensor& x);
  const QuantSpec& spec() const { return spec_; }
  ActRange range_method() const { return range_; }

  // Frozen, kEmaMinMax stops tracking the range (evaluation).
  void set_frozen(bool frozen) { frozen_ = frozen; }
  bool frozen() const { return frozen_; }
  // Disabled, forward() passes x through (BRECQ's set_quant_state(act_quant=False)).
  void set_enabled(bool enabled) { enabled_ = enabled; }
  bool enabled() const { return enabled_; }

 private:
  void observe(const Tensor& x);
  // Sets the running range and the scale (and zero point) it gives.
  void set_range(double lo, double hi);
  bool calibrated();

  QuantSpec spec_;
  ActRange range_;
  ActQuantOptions options_;
  Tensor running_min_, running_max_;  // kEmaMinMax
  bool frozen_ = false;
  bool enabled_ = true;
  bool calibrated_ = false;
};

}  // namespace ompq::nn
