// Per-element softmax / log-softmax / cross-entropy math shared by the CPU and CUDA kernels, so
// that the CPU tests cover the exact formulas the GPU runs. Every formula works on values shifted
// by the maximum along the softmax dim (exp never overflows); the kernels form the sums along that
// dim and pass them in here.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"

namespace ompq {

// exp(x) for the arguments softmax takes (x <= 0 up to rounding). f32: a branch-free Cephes-style
// polynomial (relative error within 2 ulp), which vectorizes under `omp simd` where std::exp would
// be a scalar libm call per element; results below FLT_MIN's exponent (x < -87.3) flush to 0, x is
// clamped at 88, NaN stays NaN. f64 (used by the gradient checks) keeps std::exp.
OMPQ_HD inline float softmax_expf(float x) {
  const float kMin = -87.33654475f, kMax = 88.0f;
  // Ternaries rather than fminf/fmaxf, which are libm calls unless -ffinite-math-only; NaN maps
  // to kMin here and is put back at the end.
  float xc = x > kMin ? x : kMin;
  xc = xc < kMax ? xc : kMax;
  // n = round(x / ln 2) by the 1.5 * 2^23 trick (no SSE4 round needed), r = x - n ln 2 in two
  // parts so that r keeps full precision.
  const float kRound = 12582912.0f;
  const float n = (xc * 1.44269504088896341f + kRound) - kRound;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t exponent_bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n, n in [-126, 127]
  float scale;
  memcpy(&scale, &exponent_bits, sizeof(scale));
  const float result = x < kMin ? 0.0f : p * scale;
  return x != x ? x : result;  // NaN propagates
}

template <typename T>
OMPQ_HD inline T softmax_exp_of(T x) {
  if constexpr (sizeof(T) == sizeof(float)) {
    return softmax_expf(x);
  } else {
    return std::exp(x);
  }
}

// exp(x - max): the unnormalized softmax term.
template <typename T>
OMPQ_HD inline T softmax_exp(T x, T max) {
  return softmax_exp_of(x - max);
}

// log_softmax(x) = x - max - log(sum_k exp(x_k - max)).
template <typename T>
OMPQ_HD inline T log_softmax_value(T x, T max, T log_sum) {
  return x - max - log_sum;
}

// d softmax: dx = y * (dy - sum_k dy_k * y_k).
template <typename T>
OMPQ_HD inline T softmax_grad(T y, T dy, T dot) {
  return y * (dy - dot);
}

// d log_softmax: dx = dy - softmax * sum_k dy_k, with softmax = exp(log_softmax output).
template <typename T>
OMPQ_HD inline T log_softmax_grad(T y, T dy, T sum_dy) {
  return dy - softmax_exp_of(y) * sum_dy;
}

// One row's loss with PyTorch's label smoothing ls over C classes:
//   (1 - ls) * nll + ls * mean_c(-log_softmax_c), with nll = lse - x_target and
//   mean_c(-log_softmax_c) = lse - mean_c(x_c), lse = log(sum_c exp(x_c)).
OMPQ_HD inline double cross_entropy_row_loss(double log_sum_exp, double target_logit,
                                             double mean_logit, double label_smoothing) {
  return (1.0 - label_smoothing) * (log_sum_exp - target_logit) +
         label_smoothing * (log_sum_exp - mean_logit);
}

// d loss / d x_c = scale * (softmax_c - ls / C) - [c == target] * scale * (1 - ls), where scale is
// the incoming gradient divided by the batch size (the loss is a batch mean). The first term is
// the same for every class (a branch-free loop); the second is added at the target only.
template <typename T>
OMPQ_HD inline T cross_entropy_grad(T x, T log_sum_exp, T smoothing_per_class, T scale) {
  return scale * (softmax_exp_of(x - log_sum_exp) - smoothing_per_class);
}

template <typename T>
OMPQ_HD inline T cross_entropy_target_grad(T label_smoothing, T scale) {
  return -scale * (T(1) - label_smoothing);
}

}  // namespace ompq
