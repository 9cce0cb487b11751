// Per-element AdaRound math (Nagel et al. 2020, as BRECQ implements it; docs/METHOD.md 4.3), shared
// by the CPU and CUDA kernels so that the CPU tests cover exactly what the GPU runs.
//
// Each weight w has a rounding variable alpha; h(alpha) in [0, 1] is how far w rounds up from
// floor(w / scale):
//   h(alpha)  = clamp(sigmoid(alpha) * (zeta - gamma) + gamma, 0, 1),  zeta = 1.1, gamma = -0.1
//               (the "rectified sigmoid": stretched past [0, 1] and clipped, so that h can reach 0
//               and 1 exactly with a finite alpha);
//   soft:  w^ = (clamp(floor(w / scale) + h(alpha) + zero_point, qmin, qmax) - zero_point) * scale
//   hard:  the same with h = [alpha >= 0] (h >= 1/2 exactly when alpha >= 0);
//   regularizer term 1 - |2 h(alpha) - 1|^beta, which pushes h to 0 or 1 as beta anneals down.
// Gradients follow autograd on BRECQ's expressions: torch.clamp passes the gradient at its bounds,
// floor passes none (w gets no gradient: AdaRound learns alpha only).
#pragma once

#include <cmath>

#include "core/dtype.h"
#include "core/ops/quant_math.h"

namespace ompq {

constexpr double kAdaRoundZeta = 1.1;
constexpr double kAdaRoundGamma = -0.1;

template <typename T>
OMPQ_HD inline T adaround_sigmoid(T alpha) {
  return T(1) / (T(1) + std::exp(-alpha));
}

template <typename T>
OMPQ_HD inline T rectified_sigmoid(T alpha) {
  const T stretched =
      adaround_sigmoid(alpha) * T(kAdaRoundZeta - kAdaRoundGamma) + T(kAdaRoundGamma);
  return quant_clamp(stretched, T(0), T(1));
}

// d h / d alpha: sigmoid' * (zeta - gamma) where the clamp is inactive or at a bound, else 0.
template <typename T>
OMPQ_HD inline T rectified_sigmoid_grad(T alpha) {
  const T s = adaround_sigmoid(alpha);
  const T stretched = s * T(kAdaRoundZeta - kAdaRoundGamma) + T(kAdaRoundGamma);
  return (stretched >= T(0) && stretched <= T(1))
             ? s * (T(1) - s) * T(kAdaRoundZeta - kAdaRoundGamma)
             : T(0);
}

// The alpha with h(alpha) = rest, for rest = w / scale - floor(w / scale) in [0, 1] (BRECQ's
// init: -log((zeta - gamma) / (rest - gamma) - 1), finite for every rest in [0, 1]).
template <typename T>
OMPQ_HD inline T adaround_init_alpha(T w, T scale) {
  const T v = w / scale;
  const T rest = v - std::floor(v);
  return -std::log(T(kAdaRoundZeta - kAdaRoundGamma) / (rest - T(kAdaRoundGamma)) - T(1));
}

// h for hard rounding.
template <typename T>
OMPQ_HD inline T adaround_hard_h(T alpha) {
  return alpha >= T(0) ? T(1) : T(0);
}

// The quantized weight for rounding offset h (soft h(alpha) or hard 0/1).
template <typename T>
OMPQ_HD inline T adaround_weight_value(T w, T h, T scale, T zero_point, T qmin, T qmax) {
  const T code = quant_clamp(std::floor(w / scale) + h + zero_point, qmin, qmax);
  return dequantize_value(code, scale, zero_point);
}

// d w^ / d alpha in soft mode, times `grad`.
template <typename T>
OMPQ_HD inline T adaround_weight_grad(T grad, T w, T alpha, T scale, T zero_point, T qmin, T qmax) {
  const T code = std::floor(w / scale) + rectified_sigmoid(alpha) + zero_point;
  const bool inside = code >= qmin && code <= qmax;
  return inside ? grad * scale * rectified_sigmoid_grad(alpha) : T(0);
}

// 1 - |2 h(alpha) - 1|^beta (beta >= 1).
template <typename T>
OMPQ_HD inline T adaround_regularizer_term(T alpha, T beta) {
  return T(1) - std::pow(std::fabs(T(2) * rectified_sigmoid(alpha) - T(1)), beta);
}

// d term / d alpha = -beta |u|^(beta - 1) sign(u) * 2 h'(alpha), u = 2 h - 1.
template <typename T>
OMPQ_HD inline T adaround_regularizer_grad(T alpha, T beta) {
  const T u = T(2) * rectified_sigmoid(alpha) - T(1);
  const T sign = u > T(0) ? T(1) : (u < T(0) ? T(-1) : T(0));
  return -beta * std::pow(std::fabs(u), beta - T(1)) * sign * T(2) * rectified_sigmoid_grad(alpha);
}

}  // namespace ompq
