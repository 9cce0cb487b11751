#include "layers/grad_scaler.h"

#include <cmath>
#include <vector>

#include "core/functional/elementwise.h"
#include "core/ops/amp.h"

namespace ompq::nn {

GradScaler::GradScaler(GradScalerOptions options) : options_(options), scale_(options.init_scale) {
  OMPQ_CHECK(std::isfinite(options.init_scale) && options.init_scale > 0,
             "GradScaler: init_scale must be finite and positive, got ", options.init_scale);
  OMPQ_CHECK(options.growth_factor > 1, "GradScaler: growth_factor must be > 1, got ",
             options.growth_factor);
  OMPQ_CHECK(options.backoff_factor > 0 && options.backoff_factor < 1,
             "GradScaler: backoff_factor must be in (0, 1), got ", options.backoff_factor);
  OMPQ_CHECK(options.growth_interval > 0, "GradScaler: growth_interval must be positive, got ",
             options.growth_interval);
}

Tensor GradScaler::scale(const Tensor& loss) const { return mul(loss, scale_); }

bool GradScaler::unscale_(Optimizer& optimizer) {
  OMPQ_CHECK(!unscaled_, "GradScaler: unscale_() was already called since the last update()");
  std::vector<Tensor> grads;
  for (const ParamGroup& group : optimizer.param_groups()) {
    for (const Tensor& param : group.params) {
      Tensor grad = param.grad();
      if (grad.defined()) grads.push_back(grad);
    }
  }
  found_inf_ = false;
  if (!grads.empty()) {
    Tensor found_inf = Tensor::zeros({1}, DType::kF32, grads.front().device());
    ops::unscale_grads_(grads, 1.0 / scale_, found_inf);
    found_inf_ = found_inf.item<float>() != 0.0f;  // the one host synchronization of a step
  }
  unscaled_ = true;
  return !found_inf_;
}

bool GradScaler::step(Optimizer& optimizer) {
  if (!unscaled_) unscale_(optimizer);
  if (found_inf_) return false;
  optimizer.step();
  return true;
}

void GradScaler::restore(double scale, int64_t growth_tracker) {
  OMPQ_CHECK(std::isfinite(scale) && scale > 0 && growth_tracker >= 0,
             "GradScaler: restoring scale ", scale, " and growth tracker ", growth_tracker,
             " (expected a finite scale > 0, >= 0)");
  scale_ = scale;
  growth_tracker_ = growth_tracker;
}

void GradScaler::update() {
  OMPQ_CHECK(unscaled_, "GradScaler: update() without step() or unscale_() since the last one");
  if (found_inf_) {
    scale_ *= options_.backoff_factor;
    growth_tracker_ = 0;
  } else if (++growth_tracker_ == options_.growth_interval) {
    // Growing past f32's range would make the next loss inf; keep the scale then.
    const double grown = scale_ * options_.growth_factor;
    if (std::isfinite(static_cast<float>(grown))) scale_ = grown;
    growth_tracker_ = 0;
  }
  unscaled_ = false;
  found_inf_ = false;
}

}  // namespace ompq::nn
