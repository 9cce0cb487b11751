// CPU batch-norm kernels on contiguous [N, C, S] data (S = 1 for [N, C] input). Reductions are
// threaded over channels (each channel sums its N blocks of S values in double, so the result
// does not depend on the thread count); elementwise passes are threaded over the N*C blocks.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/cpu/register.h"
#include "core/ops/norm.h"
#include "core/ops/norm_math.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

constexpr int64_t kGrainElements = 32768;

struct ChannelLayout {
  int64_t batch, channels, spatial;

  explicit ChannelLayout(const Tensor& x)
      : batch(x.size(0)),
        channels(x.size(1)),
        spatial(batch * channels == 0 ? 0 : x.numel() / (batch * channels)) {}
  int64_t count() const { return batch * spatial; }  // values per channel
  // Channels per parallel chunk so that a chunk reads about kGrainElements values.
  int64_t channel_grain() const { return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(count(), 1)); }
};

template <typename T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr;
}

// Runs an elementwise pass over an [N, C, S] array, threaded over its blocks: for S > 1,
// channel_fn(offset, c) handles the S values of one (n, c) block starting at element `offset`; for
// S = 1 ([N, C] input), row_fn(offset) handles one row of C channels, so that the inner loop still
// runs along memory.
template <typename ChannelFn, typename RowFn>
void for_each_block(const ChannelLayout& l, const ChannelFn& channel_fn, const RowFn& row_fn) {
  if (l.spatial == 1) {
    const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(l.channels, 1));
    parallel_for(0, l.batch, grain, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) row_fn(n * l.channels);
    });
    return;
  }
  const int64_t grain = std::max<int64_t>(1, kGrainElements / l.spatial);
  parallel_for(0, l.batch * l.channels, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) channel_fn(b * l.spatial, b % l.channels);
  });
}

// Per-channel mean and biased variance. Values are shifted by the channel's first value before
// summing x and x^2 in double, which keeps E[x^2] - E[x]^2 free of cancellation when |mean| is
// large against the spread.
template <typename T>
void compute_stats(const Tensor& x, const Tensor& mean, const Tensor& var,
                      const Tensor& running_mean, const Tensor& running_var, double momentum) {
  const ChannelLayout l(x);
  const double count = static_cast<double>(l.count());
  const T* __restrict__ xp = static_cast<const T*>(x.data_ptr());
  T* mean_p = static_cast<T*>(mean.data_ptr());
  T* var_p = static_cast<T*>(var.data_ptr());
  T* rmean_p = running_mean.defined() ? static_cast<T*>(running_mean.data_ptr()) : nullptr;
  T* rvar_p = running_var.defined() ? static_cast<T*>(running_var.data_ptr()) : nullptr;
  parallel_for(0, l.channels, l.channel_grain(), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double shift = xp[c * l.spatial];
      double sum = 0, sum_sq = 0;
      for (int64_t n = 0; n < l.batch; ++n) {
        const T* __restrict__ block = xp + (n * l.channels + c) * l.spatial;
#pragma omp simd reduction(+ : sum, sum_sq)
        for (int64_t i = 0; i < l.spatial; ++i) {
          const double d = static_cast<double>(block[i]) - shift;
          sum += d;
          sum_sq += d * d;
        }
      }
      const double shifted_mean = sum / count;
      const double batch_var = std::max(sum_sq / count - shifted_mean * shifted_mean, 0.0);
      const double batch_mean = shift + shifted_mean;
      mean_p[c] = static_cast<T>(batch_mean);
      var_p[c] = static_cast<T>(batch_var);
      if (rmean_p != nullptr) {
        const double unbiased_var = batch_var * count / (count - 1);
        rmean_p[c] = static_cast<T>(batch_norm_running_update(rmean_p[c], batch_mean, momentum));
        rvar_p[c] = static_cast<T>(batch_norm_running_update(rvar_p[c], unbiased_var, momentum));
      }
    }
  });
}

// y = (x - mean[c]) * scale[c] + bias[c], scale = weight * invstd folded per channel.
template <typename T>
void normalize(const Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& var,
                      const Tensor& weight, const Tensor& bias, double eps) {
  const ChannelLayout l(x);
  const T* mean_p = data_or_null<T>(mean);
  const T* var_p = data_or_null<T>(var);
  const T* w_p = data_or_null<T>(weight);
  const T* b_p = data_or_null<T>(bias);
  std::vector<BatchNormAffine<T>> affine(l.channels);
  for (int64_t c = 0; c < l.channels; ++c) {
    affine[c] = batch_norm_affine<T>(mean_p[c], var_p[c], eps, w_p ? w_p[c] : 1.0,
                                     b_p ? b_p[c] : 0.0);
  }
  const T* __restrict__ xp = static_cast<const T*>(x.data_ptr());
  T* __restrict__ yp = static_cast<T*>(y.data_ptr());
  const BatchNormAffine<T>* __restrict__ af = affine.data();
  for_each_block(
      l,
      [&](int64_t offset, int64_t c) {
        const T* __restrict__ in = xp + offset;
        T* __restrict__ out = yp + offset;
        const BatchNormAffine<T> a = af[c];
#pragma omp simd
        for (int64_t i = 0; i < l.spatial; ++i) out[i] = batch_norm_apply(in[i], a);
      },
      [&](int64_t offset) {
        const T* __restrict__ in = xp + offset;
        T* __restrict__ out = yp + offset;
#pragma omp simd
        for (int64_t c = 0; c < l.channels; ++c) out[c] = batch_norm_apply(in[c], af[c]);
      });
}

// Pass 1 (threaded over channels): sum(dy) and sum(dy * (x - mean)) per channel, which give
// grad_bias, grad_weight and the input-gradient coefficients. Pass 2 (threaded over blocks):
// dx = (dy - mean_dy) * scale + (x - mean) * xmu_scale.
template <typename T>
void compute_grads(const Tensor& grad_output, const Tensor& x, const Tensor& weight,
                         const Tensor& mean, const Tensor& var, double eps, bool training,
                         const Tensor& grad_input, const Tensor& grad_weight,
                         const Tensor& grad_bias) {
  const ChannelLayout l(x);
  const double count = static_cast<double>(l.count());
  const bool need_sums = training || grad_weight.defined() || grad_bias.defined();
  const T* __restrict__ xp = static_cast<const T*>(x.data_ptr());
  const T* __restrict__ dyp = static_cast<const T*>(grad_output.data_ptr());
  const T* mean_p = data_or_null<T>(mean);
  const T* var_p = data_or_null<T>(var);
  const T* w_p = data_or_null<T>(weight);
  T* gw_p = grad_weight.defined() ? static_cast<T*>(grad_weight.data_ptr()) : nullptr;
  T* gb_p = grad_bias.defined() ? static_cast<T*>(grad_bias.data_ptr()) : nullptr;
  std::vector<BatchNormGradCoeffs<T>> coeffs(l.channels);
  // Without sums the per-channel work is a few flops: not worth waking threads for.
  const int64_t grain = need_sums ? l.channel_grain() : l.channels;
  parallel_for(0, l.channels, grain, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const T m = mean_p[c];
      double sum_dy = 0, sum_dy_xmu = 0;
      for (int64_t n = 0; need_sums && n < l.batch; ++n) {
        const int64_t offset = (n * l.channels + c) * l.spatial;
        const T* __restrict__ dy = dyp + offset;
        const T* __restrict__ in = xp + offset;
#pragma omp simd reduction(+ : sum_dy, sum_dy_xmu)
        for (int64_t i = 0; i < l.spatial; ++i) {
          sum_dy += static_cast<double>(dy[i]);
          sum_dy_xmu += static_cast<double>(dy[i]) * static_cast<double>(in[i] - m);
        }
      }
      if (gw_p != nullptr) gw_p[c] = static_cast<T>(sum_dy_xmu * batch_norm_invstd(var_p[c], eps));
      if (gb_p != nullptr) gb_p[c] = static_cast<T>(sum_dy);
      coeffs[c] = batch_norm_grad_coeffs<T>(m, var_p[c], eps, w_p ? w_p[c] : 1.0, sum_dy,
                                            sum_dy_xmu, count, training);
    }
  });
  if (!grad_input.defined()) return;
  T* __restrict__ dxp = static_cast<T*>(grad_input.data_ptr());
  const BatchNormGradCoeffs<T>* __restrict__ cf = coeffs.data();
  for_each_block(
      l,
      [&](int64_t offset, int64_t c) {
        const T* __restrict__ dy = dyp + offset;
        const T* __restrict__ in = xp + offset;
        T* __restrict__ dx = dxp + offset;
        const BatchNormGradCoeffs<T> k = cf[c];
#pragma omp simd
        for (int64_t i = 0; i < l.spatial; ++i) dx[i] = batch_norm_input_grad(dy[i], in[i], k);
      },
      [&](int64_t offset) {
        const T* __restrict__ dy = dyp + offset;
        const T* __restrict__ in = xp + offset;
        T* __restrict__ dx = dxp + offset;
#pragma omp simd
        for (int64_t c = 0; c < l.channels; ++c) dx[c] = batch_norm_input_grad(dy[c], in[c], cf[c]);
      });
}

void batch_norm_stats_kernel(const Tensor& x, const Tensor& mean, const Tensor& var,
                             const Tensor& running_mean, const Tensor& running_var,
                             double momentum) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "batch_norm", [&] {
    compute_stats<scalar_t>(x, mean, var, running_mean, running_var, momentum);
  });
}

void batch_norm_apply_kernel(const Tensor& y, const Tensor& x, const Tensor& mean,
                             const Tensor& var, const Tensor& weight, const Tensor& bias,
                             double eps) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "batch_norm", [&] {
    normalize<scalar_t>(y, x, mean, var, weight, bias, eps);
  });
}

void batch_norm_backward_kernel(const Tensor& grad_output, const Tensor& x, const Tensor& weight,
                                const Tensor& mean, const Tensor& var, double eps, bool training,
                                const Tensor& grad_input, const Tensor& grad_weight,
                                const Tensor& grad_bias) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "batch_norm_backward", [&] {
    compute_grads<scalar_t>(grad_output, x, weight, mean, var, eps, training, grad_input,
                                  grad_weight, grad_bias);
  });
}

}  // namespace

void register_norm_kernels() {
  batch_norm_stats_stub.register_kernel(DeviceType::kCPU, batch_norm_stats_kernel);
  batch_norm_apply_stub.register_kernel(DeviceType::kCPU, batch_norm_apply_kernel);
  batch_norm_backward_stub.register_kernel(DeviceType::kCPU, batch_norm_backward_kernel);
}

}  // namespace ompq::cpu
