// Per-channel and per-element batch-norm math shared by the CPU and CUDA kernels, so that the CPU
// tests cover the exact formulas the GPU runs. Channel statistics and coefficients are formed in
// double (they are per channel, so this costs nothing) and applied per element in the tensor's
// type.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/dtype.h"
#include "core/ops/elementwise_math.h"

namespace ompq {

// The activation that batch_norm_act applies after the normalization (and the residual add).
enum class NormActivation : uint8_t {
  kIdentity,
  kRelu,   // max(v, 0)
  kRelu6,  // min(max(v, 0), 6)
};
constexpr int kNumNormActivations = 3;

// Calls fn(std::integral_constant<NormActivation, a>()), so that kernels bind the activation at
// compile time and their inner loops stay branch-free.
template <typename Fn>
inline decltype(auto) with_norm_activation(NormActivation a, const Fn& fn) {
  return detail::with_op_impl<NormActivation, kNumNormActivations, 0>(a, fn);
}

// The activations as the elementwise ops compute them (NaN passes through, as in PyTorch).
template <NormActivation kAct, typename T>
OMPQ_HD inline T norm_activation(T v) {
  if constexpr (kAct == NormActivation::kRelu) {
    return unary_apply<UnaryOp::kRelu>(v, T(0), T(0));
  } else if constexpr (kAct == NormActivation::kRelu6) {
    return unary_apply<UnaryOp::kClamp>(v, T(0), T(6));
  } else {
    static_assert(kAct == NormActivation::kIdentity, "unhandled NormActivation");
    return v;
  }
}

// grad * activation'(v), from the activation's output y = activation(v) (so the backward pass keeps
// y, not v): relu passes where y > 0; relu6 where 0 < y < 6 (PyTorch's hardtanh: nothing at either
// kink). A NaN y passes nothing.
template <NormActivation kAct, typename T>
OMPQ_HD inline T norm_activation_grad(T grad, T y) {
  if constexpr (kAct == NormActivation::kRelu) {
    return binary_apply<BinaryOp::kReluBackward>(grad, y, T(0), T(0));
  } else if constexpr (kAct == NormActivation::kRelu6) {
    return binary_apply<BinaryOp::kHardtanhBackward>(grad, y, T(0), T(6));
  } else {
    static_assert(kAct == NormActivation::kIdentity, "unhandled NormActivation");
    return grad;
  }
}

// ::sqrt: the Tensor op ompq::sqrt must not hide it where both headers are included.
OMPQ_HD inline double batch_norm_invstd(double var, double eps) { return 1.0 / ::sqrt(var + eps); }

// PyTorch's momentum convention: running = (1 - momentum) * running + momentum * batch.
OMPQ_HD inline double batch_norm_running_update(double running, double batch, double momentum) {
  return (1.0 - momentum) * running + momentum * batch;
}

// A channel's batch mean and biased variance from the sums of d = x - shift and d^2 over its
// `count` values. Any value of the channel serves as the shift (the kernels take its first); it
// keeps E[d^2] - E[d]^2 free of cancellation when |mean| is large against the spread.
struct BatchNormStats {
  double mean;
  double var;
};

OMPQ_HD inline BatchNormStats batch_norm_stats(double shift, double sum, double sum_sq,
                                               double count) {
  const double shifted_mean = sum / count;
  const double var = sum_sq / count - shifted_mean * shifted_mean;
  return {shift + shifted_mean, var < 0.0 ? 0.0 : var};  // (a NaN stays NaN)
}

// The unbiased variance that running_var tracks.
OMPQ_HD inline double batch_norm_unbiased_var(double var, double count) {
  return var * count / (count - 1);
}

// Forward as y = (x - mean) * scale + bias with scale = weight * invstd. Subtracting the mean
// first (rather than folding it into one multiply-add) keeps y accurate when |mean| >> std.
template <typename T>
struct BatchNormAffine {
  T mean;
  T scale;
  T bias;
};

template <typename T>
OMPQ_HD inline BatchNormAffine<T> batch_norm_affine(double mean, double var, double eps,
                                                    double weight, double bias) {
  return {static_cast<T>(mean), static_cast<T>(weight * batch_norm_invstd(var, eps)),
          static_cast<T>(bias)};
}

template <typename T>
OMPQ_HD inline T batch_norm_apply(T x, const BatchNormAffine<T>& a) {
  return (x - a.mean) * a.scale + a.bias;
}

// Input gradient as dx = (dy - mean_dy) * scale + (x - mean) * xmu_scale. With xhat = (x - mean) *
// invstd and M values per channel, training mode gives
//   dx = weight * invstd * (dy - sum(dy) / M - xhat * sum(dy * xhat) / M),
// because the batch statistics depend on x; eval mode normalizes with constants: dx = weight *
// invstd * dy. sum_dy_xmu is sum(dy * (x - mean)) over the channel.
template <typename T>
struct BatchNormGradCoeffs {
  T mean;
  T scale;
  T mean_dy;
  T xmu_scale;
};

template <typename T>
OMPQ_HD inline BatchNormGradCoeffs<T> batch_norm_grad_coeffs(double mean, double var, double eps,
                                                             double weight, double sum_dy,
                                                             double sum_dy_xmu, double count,
                                                             bool training) {
  double invstd = batch_norm_invstd(var, eps);
  double scale = weight * invstd;
  if (!training) return {static_cast<T>(mean), static_cast<T>(scale), T(0), T(0)};
  return {static_cast<T>(mean), static_cast<T>(scale), static_cast<T>(sum_dy / count),
          static_cast<T>(-scale * invstd * invstd * sum_dy_xmu / count)};
}

template <typename T>
OMPQ_HD inline T batch_norm_input_grad(T dy, T x, const BatchNormGradCoeffs<T>& c) {
  return (dy - c.mean_dy) * c.scale + (x - c.mean) * c.xmu_scale;
}

}  // namespace ompq
