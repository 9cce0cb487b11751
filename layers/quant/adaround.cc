#include "layers/quant/adaround.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/ops/elementwise.h"

namespace ompq::nn {

void AdaRoundSchedule::check() const {
  OMPQ_CHECK(iterations >= 1, "AdaRoundSchedule: ", iterations, " iterations (expected >= 1)");
  OMPQ_CHECK(warmup >= 0 && warmup < 1, "AdaRoundSchedule: warmup ", warmup,
             " (expected a fraction in [0, 1))");
  OMPQ_CHECK(std::isfinite(beta_start) && beta_end >= 1 && beta_start >= beta_end,
             "AdaRoundSchedule: beta from ", beta_start, " to ", beta_end,
             " (expected beta_start >= beta_end >= 1)");
}

// BRECQ compares its 1-based iteration count with warmup * iterations in floating point.
bool AdaRoundSchedule::regularized(int64_t t) const {
  return static_cast<double>(t) >= warmup * static_cast<double>(iterations);
}

double AdaRoundSchedule::beta(int64_t t) const {
  const double start = warmup * static_cast<double>(iterations);
  if (static_cast<double>(t) < start) return beta_start;
  const double progress =
      (static_cast<double>(t) - start) / (static_cast<double>(iterations) - start);
  return beta_end + (beta_start - beta_end) * std::max(0.0, 1.0 - progress);
}

void bake_adaptive_rounding(QuantizedLayer& layer, const Tensor& weight) {
  WeightQuantizer& quantizer = layer.weight_quantizer();
  OMPQ_CHECK(quantizer.adaptive_rounding(),
             "bake_adaptive_rounding: the layer's weight quantizer is not rounding adaptively");
  NoGradGuard no_grad;
  const bool enabled = quantizer.enabled();
  quantizer.set_enabled(true);
  quantizer.set_rounding_hard(true);
  const Tensor folded = layer.weight_and_bias().weight;
  OMPQ_CHECK(folded.shape() == weight.shape() && folded.dtype() == weight.dtype(),
             "bake_adaptive_rounding: weight of shape ", shape_str(weight.shape()), " and dtype ",
             dtype_name(weight.dtype()), " for a layer that quantizes ", shape_str(folded.shape()),
             " ", dtype_name(folded.dtype()));
  const Tensor target = quantizer.forward(folded);
  Tensor stored = target;
  if (const auto& bn = layer.folded_batch_norm()) {
    // The fold multiplies output channel o by factor[o]; the same fold of ones yields factor.
    Shape column(weight.dim(), 1);
    column[0] = weight.size(0);
    const Tensor factor =
        fold_batch_norm(Tensor::ones(column, weight.dtype(), weight.device()), Tensor(), *bn)
            .weight;
    const Tensor dead = ops::eq(factor, Tensor::zeros({}, factor.dtype(), factor.device()));
    stored = ops::where(dead, weight, ops::div(target, factor));
  }
  Tensor(weight).copy_(stored);
  weight.bump_version();
  quantizer.stop_adaptive_rounding();
  quantizer.set_enabled(enabled);
}

}  // namespace ompq::nn
