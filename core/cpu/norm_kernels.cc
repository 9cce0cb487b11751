// CPU batch-norm kernels on contiguous [N, C, S] data (S = 1 for [N, C] input).
// Work is split into channel groups, threaded with parallel_for: one channel when S > 1, a run of
// kGroupChannels adjacent channels when S = 1 (so that inner loops still run along memory). Each
// group is reduced and then rewritten by the same thread while its data is still in cache, so a
// training step reads x (and dy) from memory about once per phase. Per-channel sums (see
// channel_sums) run in a fixed order whatever the thread count, so results do not depend on it.
#include <algorithm>
#include <array>
#include <cmath>

#include "core/cpu/register.h"
#include "core/ops/norm.h"
#include "core/ops/norm_math.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

constexpr int64_t kGrainElements = 32768;
constexpr int64_t kGroupChannels = 128;
constexpr int64_t kLanes = 16;
constexpr int64_t kSumChunk = 256;

struct ChannelLayout {
  int64_t batch, channels, spatial;

  explicit ChannelLayout(const Tensor& x)
      : batch(x.size(0)),
        channels(x.size(1)),
        spatial(batch * channels == 0 ? 0 : x.numel() / (batch * channels)) {}
  int64_t count() const { return batch * spatial; }  // values per channel
};

// Channels per group for passes that reduce: one channel when S > 1, so that a channel is
// rewritten right after it was summed, while it is still in cache.
int64_t reduction_group(const ChannelLayout& l) { return l.spatial == 1 ? kGroupChannels : 1; }

// Calls fn(c0, c1) for every group [c0, c1) of `group` channels (<= kGroupChannels), threaded.
template <typename Fn>
void for_each_channel_group(const ChannelLayout& l, int64_t group, const Fn& fn) {
  const int64_t num_groups = (l.channels + group - 1) / group;
  const int64_t group_elements = std::max<int64_t>(1, l.count() * std::min(group, l.channels));
  const int64_t grain = std::max<int64_t>(1, kGrainElements / group_elements);
  parallel_for(0, num_groups, grain, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) fn(g * group, std::min(l.channels, (g + 1) * group));
  });
}

// For channels [c0, c1) of one group: sum_a[c - c0] and sum_b[c - c0] are the sums over the
// channel's elements k of the two values (of type T) term(k, c, &a, &b) writes. Values are summed
// in T within chunks of at most kSumChunk (a loop that vectorizes; kLanes independent partial sums
// so that it does not wait on the latency of each add) and in double across chunks, which keeps
// the sum accurate for any count.
template <typename T, typename Term>
void channel_sums(const ChannelLayout& l, int64_t c0, int64_t c1, const Term& term, double* sum_a,
                  double* sum_b) {
  if (l.spatial == 1) {  // rows of C channels: the channels are the lanes
    std::fill(sum_a, sum_a + (c1 - c0), 0.0);
    std::fill(sum_b, sum_b + (c1 - c0), 0.0);
    for (int64_t n0 = 0; n0 < l.batch; n0 += kSumChunk) {
      T pa[kGroupChannels] = {}, pb[kGroupChannels] = {};
      for (int64_t n = n0; n < std::min(l.batch, n0 + kSumChunk); ++n) {
        const int64_t row = n * l.channels;
#pragma omp simd
        for (int64_t c = c0; c < c1; ++c) {
          T a, b;
          term(row + c, c, a, b);
          pa[c - c0] += a;
          pb[c - c0] += b;
        }
      }
      for (int64_t c = 0; c < c1 - c0; ++c) {
        sum_a[c] += pa[c];
        sum_b[c] += pb[c];
      }
    }
    return;
  }
  for (int64_t c = c0; c < c1; ++c) {
    double da[kLanes] = {}, db[kLanes] = {};
    for (int64_t n = 0; n < l.batch; ++n) {
      const int64_t block = (n * l.channels + c) * l.spatial;
      for (int64_t i0 = 0; i0 < l.spatial; i0 += kSumChunk) {
        const int64_t i1 = std::min(l.spatial, i0 + kSumChunk);
        T pa[kLanes] = {}, pb[kLanes] = {};
        int64_t i = i0;
        for (; i + kLanes <= i1; i += kLanes) {
#pragma omp simd
          for (int64_t j = 0; j < kLanes; ++j) {
            T a, b;
            term(block + i + j, c, a, b);
            pa[j] += a;
            pb[j] += b;
          }
        }
        for (int64_t j = 0; i < i1; ++i, ++j) {
          T a, b;
          term(block + i, c, a, b);
          pa[j] += a;
          pb[j] += b;
        }
#pragma omp simd
        for (int64_t j = 0; j < kLanes; ++j) {
          da[j] += pa[j];
          db[j] += pb[j];
        }
      }
    }
    double sa = 0, sb = 0;
    for (int64_t j = 0; j < kLanes; ++j) {
      sa += da[j];
      sb += db[j];
    }
    sum_a[c - c0] = sa;
    sum_b[c - c0] = sb;
  }
}

// Calls fn(k, c) for every element k of channels [c0, c1), in memory order.
template <typename Fn>
void channel_map(const ChannelLayout& l, int64_t c0, int64_t c1, const Fn& fn) {
  for (int64_t n = 0; n < l.batch; ++n) {
    if (l.spatial == 1) {
      const int64_t row = n * l.channels;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) fn(row + c, c);
      continue;
    }
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t block = (n * l.channels + c) * l.spatial;
#pragma omp simd
      for (int64_t i = 0; i < l.spatial; ++i) fn(block + i, c);
    }
  }
}

template <typename T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

// Training: per-channel statistics, then y, group by group. The values are shifted by the channel's
// first value before x and x^2 are summed, which keeps E[x^2] - E[x]^2 free of cancellation when
// |mean| is large against the spread. Eval: y from the given statistics.
template <typename T>
void forward(const Tensor& y, const Tensor& x, const Tensor& weight, const Tensor& bias,
             const Tensor& mean, const Tensor& var, const Tensor& running_mean,
             const Tensor& running_var, bool training, double momentum, double eps) {
  const ChannelLayout l(x);
  const double count = static_cast<double>(l.count());
  const T* __restrict__ xp = static_cast<const T*>(x.data_ptr());
  T* __restrict__ yp = static_cast<T*>(y.data_ptr());
  const T* w_p = data_or_null<const T>(weight);
  const T* b_p = data_or_null<const T>(bias);
  T* mean_p = static_cast<T*>(mean.data_ptr());
  T* var_p = static_cast<T*>(var.data_ptr());
  T* rmean_p = data_or_null<T>(running_mean);
  T* rvar_p = data_or_null<T>(running_var);
  // Eval has nothing to reduce: groups as large as keeps every thread busy, read in memory order.
  const int64_t group =
      training ? reduction_group(l)
               : std::clamp<int64_t>((l.channels + num_threads() - 1) / num_threads(), 1, kGroupChannels);
  for_each_channel_group(l, group, [&](int64_t c0, int64_t c1) {
    if (training) {
      std::array<T, kGroupChannels> shift;
      std::array<double, kGroupChannels> sum, sum_sq;
      for (int64_t c = c0; c < c1; ++c) shift[c - c0] = xp[c * l.spatial];
      channel_sums<T>(
          l, c0, c1,
          [&](int64_t k, int64_t c, T& a, T& b) {
            a = xp[k] - shift[c - c0];
            b = a * a;
          },
          sum.data(), sum_sq.data());
      for (int64_t c = c0; c < c1; ++c) {
        const BatchNormStats stats =
            batch_norm_stats(shift[c - c0], sum[c - c0], sum_sq[c - c0], count);
        mean_p[c] = static_cast<T>(stats.mean);
        var_p[c] = static_cast<T>(stats.var);
        if (rmean_p != nullptr) {
          rmean_p[c] = static_cast<T>(batch_norm_running_update(rmean_p[c], stats.mean, momentum));
          rvar_p[c] = static_cast<T>(batch_norm_running_update(
              rvar_p[c], batch_norm_unbiased_var(stats.var, count), momentum));
        }
      }
    }
    std::array<BatchNormAffine<T>, kGroupChannels> affine;
    for (int64_t c = c0; c < c1; ++c) {
      affine[c - c0] = batch_norm_affine<T>(mean_p[c], var_p[c], eps, w_p ? w_p[c] : 1.0,
                                            b_p ? b_p[c] : 0.0);
    }
    channel_map(l, c0, c1,
                [&](int64_t k, int64_t c) { yp[k] = batch_norm_apply(xp[k], affine[c - c0]); });
  });
}

// Per group: sum(dy) and sum(dy * (x - mean)) per channel, which give grad_bias, grad_weight and
// the input-gradient coefficients; then dx = (dy - mean_dy) * scale + (x - mean) * xmu_scale.
template <typename T>
void backward(const Tensor& grad_output, const Tensor& x, const Tensor& weight, const Tensor& mean,
              const Tensor& var, double eps, bool training, const Tensor& grad_input,
              const Tensor& grad_weight, const Tensor& grad_bias) {
  const ChannelLayout l(x);
  const double count = static_cast<double>(l.count());
  const bool need_sums = training || grad_weight.defined() || grad_bias.defined();
  const T* __restrict__ xp = static_cast<const T*>(x.data_ptr());
  const T* __restrict__ dyp = static_cast<const T*>(grad_output.data_ptr());
  T* __restrict__ dxp = data_or_null<T>(grad_input);
  const T* mean_p = static_cast<const T*>(mean.data_ptr());
  const T* var_p = static_cast<const T*>(var.data_ptr());
  const T* w_p = data_or_null<const T>(weight);
  T* gw_p = data_or_null<T>(grad_weight);
  T* gb_p = data_or_null<T>(grad_bias);
  for_each_channel_group(l, reduction_group(l), [&](int64_t c0, int64_t c1) {
    std::array<double, kGroupChannels> sum_dy{}, sum_dy_xmu{};
    if (need_sums) {
      channel_sums<T>(
          l, c0, c1,
          [&](int64_t k, int64_t c, T& a, T& b) {
            a = dyp[k];
            b = dyp[k] * (xp[k] - mean_p[c]);
          },
          sum_dy.data(), sum_dy_xmu.data());
    }
    std::array<BatchNormGradCoeffs<T>, kGroupChannels> coeffs;
    for (int64_t c = c0; c < c1; ++c) {
      const double sdy = sum_dy[c - c0], sdx = sum_dy_xmu[c - c0];
      if (gw_p != nullptr) gw_p[c] = static_cast<T>(sdx * batch_norm_invstd(var_p[c], eps));
      if (gb_p != nullptr) gb_p[c] = static_cast<T>(sdy);
      coeffs[c - c0] = batch_norm_grad_coeffs<T>(mean_p[c], var_p[c], eps, w_p ? w_p[c] : 1.0, sdy,
                                                 sdx, count, training);
    }
    if (dxp == nullptr) return;
    channel_map(l, c0, c1, [&](int64_t k, int64_t c) {
      dxp[k] = batch_norm_input_grad(dyp[k], xp[k], coeffs[c - c0]);
    });
  });
}

void batch_norm_kernel(const Tensor& y, const Tensor& x, const Tensor& weight, const Tensor& bias,
                       const Tensor& mean, const Tensor& var, const Tensor& running_mean,
                       const Tensor& running_var, bool training, double momentum, double eps) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "batch_norm", [&] {
    forward<scalar_t>(y, x, weight, bias, mean, var, running_mean, running_var, training, momentum,
                      eps);
  });
}

void batch_norm_backward_kernel(const Tensor& grad_output, const Tensor& x, const Tensor& weight,
                                const Tensor& mean, const Tensor& var, double eps, bool training,
                                const Tensor& grad_input, const Tensor& grad_weight,
                                const Tensor& grad_bias) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "batch_norm_backward", [&] {
    backward<scalar_t>(grad_output, x, weight, mean, var, eps, training, grad_input, grad_weight,
                       grad_bias);
  });
}

}  // namespace

void register_norm_kernels() {
  batch_norm_stub.register_kernel(DeviceType::kCPU, batch_norm_kernel);
  batch_norm_backward_stub.register_kernel(DeviceType::kCPU, batch_norm_backward_kernel);
}

}  // namespace ompq::cpu
