// Per-element softmax / log-softmax / cross-entropy math shared by the CPU and CUDA kernels, so that
// the CPU tests cover the exact formulas the GPU runs. Every formula works on values shifted by the
// maximum along the softmax dim (exp never overflows); sums of exponentials are accumulated in
// double by the kernels and passed in here.
#pragma once

#include <cmath>

#include "core/dtype.h"

namespace ompq {

// exp(x - max): the unnormalized softmax term.
template <typename T>
OMPQ_HD inline T softmax_exp(T x, T max) {
  return std::exp(x - max);
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
  return dy - std::exp(y) * sum_dy;
}

// One row's loss with PyTorch's label smoothing ls over C classes:
//   (1 - ls) * nll + ls * mean_c(-log_softmax_c), with nll = lse - x_target and
//   mean_c(-log_softmax_c) = lse - mean_c(x_c), lse = log(sum_c exp(x_c)).
OMPQ_HD inline double cross_entropy_row_loss(double log_sum_exp, double target_logit,
                                             double mean_logit, double label_smoothing) {
  return (1.0 - label_smoothing) * (log_sum_exp - target_logit) +
         label_smoothing * (log_sum_exp - mean_logit);
}

// d loss / d x_c = scale * (softmax_c - (1 - ls) * [c == target] - ls / C), where scale is the
// incoming gradient divided by the batch size (the loss is a batch mean).
template <typename T>
OMPQ_HD inline T cross_entropy_grad(T x, T log_sum_exp, bool is_target, T label_smoothing,
                                    T num_classes, T scale) {
  T smoothed_target = label_smoothing / num_classes + (is_target ? T(1) - label_smoothing : T(0));
  return scale * (std::exp(x - log_sum_exp) - smoothed_target);
}

}  // namespace ompq
