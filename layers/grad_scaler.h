// Dynamic loss scaling for f16 mixed-precision training (torch.cuda.amp.GradScaler). f16 keeps
// only ~6e-8 to 65504: small gradients flush to zero unless the loss is multiplied by a large
// scale before backward. The gradients of the f32 master weights are then divided by the scale
// (ops::unscale_grads_, one pass that also looks for inf/NaN), the optimizer step is skipped when
// any is non-finite, and the scale adapts: x backoff_factor after an overflow, x growth_factor
// after growth_interval overflow-free steps in a row. bf16 needs none of this (its exponent range
// is f32's). Each iteration: scale(loss).backward(); step(optimizer); update().
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "layers/optim.h"

namespace ompq::nn {

struct GradScalerOptions {
  double init_scale = 65536.0;  // 2^16, PyTorch's default
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

class GradScaler {
 public:
  // Throws an Error naming the bad option (init_scale finite and > 0, growth_factor > 1,
  // backoff_factor in (0, 1), growth_interval > 0).
  explicit GradScaler(GradScalerOptions options = {});

  // loss * scale, autograd-aware: its backward gives gradients multiplied by the scale.
  Tensor scale(const Tensor& loss) const;
  // Divides the gradients of every parameter of `optimizer` by the scale, in place, and records
  // whether any was inf or NaN; returns true when all are finite. At most once per iteration
  // (call it before step() to clip or inspect unscaled gradients).
  bool unscale_(Optimizer& optimizer);
  // unscale_() unless already done this iteration, then optimizer.step() unless a gradient was
  // non-finite. Returns whether the optimizer stepped.
  bool step(Optimizer& optimizer);
  // Adapts the scale to this iteration's outcome and starts the next iteration. Throws unless
  // step() or unscale_() ran since the last update().
  void update();

  double scale_value() const { return scale_; }
  // Overflow-free steps in a row since the scale last changed.
  int64_t growth_tracker() const { return growth_tracker_; }
  // Continues from the state scale_value() and growth_tracker() gave (a checkpoint's), between
  // iterations. Throws an Error unless `scale` is finite and > 0 and `growth_tracker` >= 0.
  void restore(double scale, int64_t growth_tracker);

 private:
  GradScalerOptions options_;
  double scale_;
  int64_t growth_tracker_ = 0;
  bool unscaled_ = false;   // unscale_() ran this iteration
  bool found_inf_ = false;  // ... and met inf or NaN
};

}  // namespace ompq::nn
