// AdaRound's training schedule and the end of adaptive rounding (docs/METHOD.md 4.3-4.4, BRECQ's
// LinearTempDecay and AdaRound loss). The rounding itself lives in WeightQuantizer
// (start_adaptive_rounding ...) and core/functional/adaround.h.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "layers/quant/quantized_layer.h"

namespace ompq::nn {

// Which iterations add the rounding regularizer and with which exponent beta. Iterations count
// from 1 to `iterations`; the first warmup * iterations - 1 go without the regularizer, then beta
// falls linearly from beta_start (at t = warmup * iterations) to beta_end (at t = iterations).
struct AdaRoundSchedule {
  int64_t iterations = 20000;
  double warmup = 0.2;
  double beta_start = 20.0;
  double beta_end = 2.0;

  // Throws unless iterations >= 1, warmup in [0, 1) and beta_start >= beta_end >= 1.
  void check() const;
  bool regularized(int64_t t) const;
  double beta(int64_t t) const;
};

// Ends the adaptive rounding of `layer` by writing its decisions into `weight`, the real-valued
// weight the layer quantizes (its wrapped Conv2d's or Linear's; with a folded batch norm, the
// unfolded one): afterwards rounding to nearest gives exactly the hard-rounded weight, which
// survives a state_dict round trip with nothing else. Output channels whose folded batch norm
// scales them by 0 keep their weight (the fold zeroes them whatever is stored).
void bake_adaptive_rounding(QuantizedLayer& layer, const Tensor& weight);

}  // namespace ompq::nn
