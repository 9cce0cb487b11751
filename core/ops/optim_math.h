// Per-element parameter updates of the optimizers, shared by the CPU and CUDA kernels. Each follows
// torch.optim's single-tensor implementation (torch 1.13) operation by operation: the scalars that
// torch computes in Python double (bias corrections, step size, 1 - lr * weight_decay) are computed
// in double on the host here too, then rounded to the parameter's type, so results agree to
// rounding.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/dtype.h"

namespace ompq {

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

// Adam (decoupled_weight_decay = false) and AdamW (true).
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;
};

template <typename T>
struct SgdCoefficients {
  T lr;
  T weight_decay;
  T momentum;
  T one_minus_dampening;
  bool nesterov;
  bool first_step;  // torch starts the momentum buffer at the first direction, undampened
};

template <typename T>
SgdCoefficients<T> sgd_coefficients(const SgdOptions& o, bool first_step) {
  return {static_cast<T>(o.lr),
          static_cast<T>(o.weight_decay),
          static_cast<T>(o.momentum),
          static_cast<T>(1.0 - o.dampening),
          o.nesterov,
          first_step};
}

// One SGD step of one element. `momentum_buffer` is null when momentum is 0. The flags are uniform
// over a tensor; written as selects so that the loop over elements vectorizes.
template <typename T>
OMPQ_HD inline void sgd_update(T* param, T grad, T* momentum_buffer, const SgdCoefficients<T>& c) {
  const T p = *param;
  T direction = c.weight_decay != T(0) ? grad + c.weight_decay * p : grad;
  if (momentum_buffer != nullptr) {
    const T previous = *momentum_buffer;
    const T buf =
        c.first_step ? direction : previous * c.momentum + c.one_minus_dampening * direction;
    *momentum_buffer = buf;
    direction = c.nesterov ? direction + c.momentum * buf : buf;
  }
  *param = p - c.lr * direction;
}

template <typename T>
struct AdamCoefficients {
  T beta1;
  T beta2;
  T one_minus_beta1;
  T one_minus_beta2;
  T eps;
  T weight_decay;  // Adam: L2 term added to the gradient; 0 for AdamW
  T decay_factor;  // AdamW: 1 - lr * weight_decay applied to the parameter first; 1 for Adam
  T step_size;     // lr / (1 - beta1^step)
  T bias_correction2_sqrt;  // sqrt(1 - beta2^step)
};

// `step` counts from 1 (the step being taken).
template <typename T>
AdamCoefficients<T> adam_coefficients(const AdamOptions& o, int64_t step) {
  double s = static_cast<double>(step);
  double bias_correction1 = 1.0 - std::pow(o.beta1, s);
  double bias_correction2 = 1.0 - std::pow(o.beta2, s);
  return {static_cast<T>(o.beta1),
          static_cast<T>(o.beta2),
          static_cast<T>(1.0 - o.beta1),
          static_cast<T>(1.0 - o.beta2),
          static_cast<T>(o.eps),
          static_cast<T>(o.decoupled_weight_decay ? 0.0 : o.weight_decay),
          static_cast<T>(o.decoupled_weight_decay ? 1.0 - o.lr * o.weight_decay : 1.0),
          static_cast<T>(o.lr / bias_correction1),
          static_cast<T>(std::sqrt(bias_correction2))};
}

// Qualified: inside namespace ompq the Tensor op ompq::sqrt would hide the C function.
OMPQ_HD inline float optim_sqrt(float x) { return ::sqrtf(x); }
OMPQ_HD inline double optim_sqrt(double x) { return ::sqrt(x); }

// One Adam/AdamW step of one element.
template <typename T>
OMPQ_HD inline void adam_update(T* param, T grad, T* exp_avg, T* exp_avg_sq,
                                const AdamCoefficients<T>& c) {
  T p = *param * c.decay_factor;
  grad = c.weight_decay != T(0) ? grad + c.weight_decay * p : grad;
  T m = *exp_avg * c.beta1 + c.one_minus_beta1 * grad;
  T v = *exp_avg_sq * c.beta2 + c.one_minus_beta2 * grad * grad;
  *exp_avg = m;
  *exp_avg_sq = v;
  T denom = optim_sqrt(v) / c.bias_correction2_sqrt + c.eps;
  *param = p - c.step_size * m / denom;
}

}  // namespace ompq
