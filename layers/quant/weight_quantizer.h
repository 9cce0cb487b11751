// WeightQuantizer: fake-quantizes a layer's weight with a QuantSpec whose scale and zero point it
// owns as buffers ("scale", "zero_point" when affine). Two ways to set them:
//   kMinMax (QAT, HAWQ-V3): from the weight's per-channel (or whole-tensor) min and max at every
//           forward, so the grid follows the weights as they train;
//   kMse    (PTQ, BRECQ):   BRECQ's Lp-2.4 range search (mse_range.h) at the first forward (or an
//           explicit calibrate()), then fixed; a loaded checkpoint's positive scale counts as done.
// The weight's gradient is the clipped straight-through estimate; the range gets none.
//
// Rounding is to the nearest grid point, or, between start_adaptive_rounding() and
// stop_adaptive_rounding() (PTQ reconstruction, adaround.h), AdaRound's learned rounding: each
// element of the weight given at the start rounds down or up by its rounding variable alpha,
// softly (differentiable in alpha, not in the weight) or, once hardened, by the sign of alpha. The
// rounding variables are not module state: a reconstruction bakes its decisions into the layer's
// weight (bake_adaptive_rounding in adaround.h) before the state is saved.
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

  // Starts AdaRound for weight w (the one forward() will be given, calibrating first if needed):
  // soft rounding with alpha initialized so that it reproduces w's own position between its grid
  // points (h(alpha) = w / scale - floor(w / scale)). alpha requires grad.
  void start_adaptive_rounding(const Tensor& w);
  // Hard rounding (up where alpha >= 0) instead of soft.
  void set_rounding_hard(bool hard);
  // Back to rounding to nearest; alpha is dropped.
  void stop_adaptive_rounding();
  bool adaptive_rounding() const { return alpha_.defined(); }
  bool rounding_hard() const { return hard_; }
  // The rounding variables (undefined without adaptive rounding).
  const Tensor& rounding_variables() const { return alpha_; }
  // AdaRound's regularizer sum(1 - |2 h(alpha) - 1|^beta) of this weight, differentiable in alpha.
  Tensor rounding_regularizer(double beta) const;

 private:
  bool calibrated();

  QuantSpec spec_;
  WeightRange range_;
  bool enabled_ = true;
  bool calibrated_ = false;
  Tensor alpha_;  // AdaRound's rounding variables, the weight's shape; undefined: nearest
  bool hard_ = false;
};

}  // namespace ompq::nn
