// CPU batch-norm kernels. x (and dy, y, dx, which share its layout) is one of
//  - planar: contiguous [N, C, S] with S > 1 (NCHW). Work is split into channel groups, threaded
//    with parallel_for; a training pass reduces one channel and then rewrites it while it is still
//    in cache, so a step reads x (and dy) from memory about once per phase.
//  - interleaved: rows of C channels, [R, C] in memory: [N, C] input (R = N) and channels_last
//    [N, C, H, W] (NHWC, R = N*H*W). The channels are the vector lanes of every loop; rows are
//    split into fixed blocks, reduced block by block into per-channel partial sums, then rewritten
//    in a second pass over rows.
// The residual add and the activation of batch_norm_act run in the pass that writes y; their
// gradient in the passes that read dy.
// Per-channel sums run in an order fixed by the shape alone (never by the thread count), so
// results do not depend on it. The forward pass also reads and writes bf16/f16 activations (f32
// per-channel vectors and math); the backward pass takes f32 and f64.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/cpu/register.h"
#include "core/cpu/storage_dispatch.h"
#include "core/ops/conv.h"
#include "core/ops/norm.h"
#include "core/ops/norm_math.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

constexpr int64_t kGrainElements = 32768;
constexpr int64_t kLanes = 16;
// Values summed in the tensor's type before the partial sum moves to double (vectorizable and
// still accurate for any count).
constexpr int64_t kSumChunk = 256;

struct ChannelLayout {
  int64_t batch, channels, spatial;
  bool interleaved;

  explicit ChannelLayout(const Tensor& x)
      : batch(x.size(0)),
        channels(x.size(1)),
        spatial(batch * channels == 0 ? 0 : x.numel() / (batch * channels)),
        interleaved(spatial == 1 || is_channels_last(x)) {}
  int64_t count() const { return batch * spatial; }  // values per channel; rows when interleaved
};

// ---- planar [N, C, S] ---------------------------------------------------------------------------

// Calls fn(c0, c1) for every group [c0, c1) of `group` channels, threaded.
template <typename Fn>
void for_each_channel_group(const ChannelLayout& l, int64_t group, const Fn& fn) {
  const int64_t num_groups = (l.channels + group - 1) / group;
  const int64_t group_elements = std::max<int64_t>(1, l.count() * std::min(group, l.channels));
  const int64_t grain = std::max<int64_t>(1, kGrainElements / group_elements);
  parallel_for(0, num_groups, grain, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) fn(g * group, std::min(l.channels, (g + 1) * group));
  });
}

// *sum_a and *sum_b: the sums over channel c's elements k of the two values (of type T) that
// term(k, c, a, b) writes. Summed in T within chunks of at most kSumChunk (kLanes independent
// partial sums, so that the loop vectorizes and does not wait on the latency of each add) and in
// double across chunks.
template <typename T, typename Term>
void planar_sums(const ChannelLayout& l, int64_t c, const Term& term, double* sum_a,
                 double* sum_b) {
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
  *sum_a = *sum_b = 0;
  for (int64_t j = 0; j < kLanes; ++j) {
    *sum_a += da[j];
    *sum_b += db[j];
  }
}

// Calls fn(k, c) for every element k of channels [c0, c1), in memory order.
template <typename Fn>
void planar_map(const ChannelLayout& l, int64_t c0, int64_t c1, const Fn& fn) {
  for (int64_t n = 0; n < l.batch; ++n) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t block = (n * l.channels + c) * l.spatial;
#pragma omp simd
      for (int64_t i = 0; i < l.spatial; ++i) fn(block + i, c);
    }
  }
}

// ---- interleaved [R, C] -------------------------------------------------------------------------

// sum_a[c] and sum_b[c] (C each): the sums over the rows of the two values term(k, c, a, b)
// writes for element k = row * C + c. Each block of at most kSumChunk rows is summed in T along
// the channel lanes, then the blocks' sums are added in double, in block order.
template <typename T, typename Term>
void interleaved_sums(const ChannelLayout& l, const Term& term, double* sum_a, double* sum_b) {
  const int64_t channels = l.channels, rows = l.count();
  const int64_t block_rows = std::clamp<int64_t>(kGrainElements / channels, 1, kSumChunk);
  const int64_t blocks = (rows + block_rows - 1) / block_rows;
  std::vector<double> partial(2 * blocks * channels);  // [block][a, b][C]
  parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> block_a(channels), block_b(channels);
    T* __restrict pa = block_a.data();
    T* __restrict pb = block_b.data();
    for (int64_t block = b0; block < b1; ++block) {
      std::fill(pa, pa + channels, T(0));
      std::fill(pb, pb + channels, T(0));
      for (int64_t r = block * block_rows; r < std::min(rows, (block + 1) * block_rows); ++r) {
        const int64_t row = r * channels;
#pragma omp simd
        for (int64_t c = 0; c < channels; ++c) {
          T a, b;
          term(row + c, c, a, b);
          pa[c] += a;
          pb[c] += b;
        }
      }
      double* out = partial.data() + 2 * block * channels;
      std::copy(pa, pa + channels, out);
      std::copy(pb, pb + channels, out + channels);
    }
  });
  std::fill(sum_a, sum_a + channels, 0.0);
  std::fill(sum_b, sum_b + channels, 0.0);
  for (int64_t block = 0; block < blocks; ++block) {
    const double* in = partial.data() + 2 * block * channels;
#pragma omp simd
    for (int64_t c = 0; c < channels; ++c) {
      sum_a[c] += in[c];
      sum_b[c] += in[channels + c];
    }
  }
}

// Calls fn(k, c) for every element k = row * C + c, threaded over rows.
template <typename Fn>
void interleaved_map(const ChannelLayout& l, const Fn& fn) {
  const int64_t channels = l.channels;
  parallel_for(0, l.count(), std::max<int64_t>(1, kGrainElements / channels),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   const int64_t row = r * channels;
#pragma omp simd
                   for (int64_t c = 0; c < channels; ++c) fn(row + c, c);
                 }
               });
}

// ---- per-channel coefficients
// --------------------------------------------------------------------

// BatchNormAffine per channel as separate arrays, so that loops over channel lanes load them
// with plain vector loads.
template <typename T>
struct ChannelAffine {
  std::vector<T> mean, scale, bias;
  explicit ChannelAffine(int64_t channels) : mean(channels), scale(channels), bias(channels) {}
  void set(int64_t c, const BatchNormAffine<T>& a) {
    mean[c] = a.mean;
    scale[c] = a.scale;
    bias[c] = a.bias;
  }
};

template <typename T>
struct ChannelGradCoeffs {
  std::vector<T> mean, scale, mean_dy, xmu_scale;
  explicit ChannelGradCoeffs(int64_t channels)
      : mean(channels), scale(channels), mean_dy(channels), xmu_scale(channels) {}
  void set(int64_t c, const BatchNormGradCoeffs<T>& g) {
    mean[c] = g.mean;
    scale[c] = g.scale;
    mean_dy[c] = g.mean_dy;
    xmu_scale[c] = g.xmu_scale;
  }
};

template <typename T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

// ---- forward and backward ----------------------------------------------------------------------

// Training: per-channel statistics, then y. The values are shifted by the channel's first value
// before x and x^2 are summed, which keeps E[x^2] - E[x]^2 free of cancellation when |mean| is
// large against the spread. Eval: y from the given statistics. Either way the residual add and the
// activation run in the pass that writes y. x, the residual and y are stored as S, the per-channel
// vectors and all arithmetic are C (storage_dispatch.h: f32 math for bf16/f16 activations).
template <typename S, typename C, NormActivation kAct, bool kResidual>
void forward(const Tensor& y, const Tensor& x, const Tensor& residual, const Tensor& weight,
             const Tensor& bias, const Tensor& mean, const Tensor& var, const Tensor& running_mean,
             const Tensor& running_var, bool training, double momentum, double eps) {
  const ChannelLayout l(x);
  const double count = static_cast<double>(l.count());
  const S* __restrict xp = static_cast<const S*>(x.data_ptr());
  const S* __restrict rp = data_or_null<const S>(residual);
  S* __restrict yp = static_cast<S*>(y.data_ptr());
  const C* w_p = data_or_null<const C>(weight);
  const C* b_p = data_or_null<const C>(bias);
  C* mean_p = static_cast<C*>(mean.data_ptr());
  C* var_p = static_cast<C*>(var.data_ptr());
  C* rmean_p = data_or_null<C>(running_mean);
  C* rvar_p = data_or_null<C>(running_var);
  // The channel's first value: x[n = 0, c, s = 0] in either layout.
  const int64_t first_stride = l.interleaved ? 1 : l.spatial;
  ChannelAffine<C> affine(l.channels);
  // Channel c's statistics (training) and affine coefficients, from the sums of the shifted
  // values.
  auto finish_channel = [&](int64_t c, double sum, double sum_sq) {
    if (training) {
      const BatchNormStats stats =
          batch_norm_stats(convert<C>(xp[c * first_stride]), sum, sum_sq, count);
      mean_p[c] = static_cast<C>(stats.mean);
      var_p[c] = static_cast<C>(stats.var);
      if (rmean_p != nullptr) {
        rmean_p[c] = static_cast<C>(batch_norm_running_update(rmean_p[c], stats.mean, momentum));
        rvar_p[c] = static_cast<C>(batch_norm_running_update(
            rvar_p[c], batch_norm_unbiased_var(stats.var, count), momentum));
      }
    }
    affine.set(
        c, batch_norm_affine<C>(mean_p[c], var_p[c], eps, w_p ? w_p[c] : 1.0, b_p ? b_p[c] : 0.0));
  };
  auto shifted_terms = [&](int64_t k, int64_t c, C& a, C& b) {
    a = convert<C>(xp[k]) - convert<C>(xp[c * first_stride]);
    b = a * a;
  };
  const C* __restrict a_mean = affine.mean.data();
  const C* __restrict a_scale = affine.scale.data();
  const C* __restrict a_bias = affine.bias.data();
  auto apply = [&](int64_t k, int64_t c) {
    C v = batch_norm_apply(convert<C>(xp[k]), BatchNormAffine<C>{a_mean[c], a_scale[c], a_bias[c]});
    if constexpr (kResidual) v += convert<C>(rp[k]);
    yp[k] = convert<S>(norm_activation<kAct>(v));
  };

  if (l.interleaved) {
    std::vector<double> sum(l.channels), sum_sq(l.channels);
    if (training) interleaved_sums<C>(l, shifted_terms, sum.data(), sum_sq.data());
    for (int64_t c = 0; c < l.channels; ++c) finish_channel(c, sum[c], sum_sq[c]);
    interleaved_map(l, apply);
    return;
  }
  // Eval has nothing to reduce: groups as large as keeps every thread busy, read in memory order.
  const int64_t group =
      training ? 1 : std::max<int64_t>(1, (l.channels + num_threads() - 1) / num_threads());
  for_each_channel_group(l, group, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double sum = 0, sum_sq = 0;
      if (training) planar_sums<C>(l, c, shifted_terms, &sum, &sum_sq);
      finish_channel(c, sum, sum_sq);
    }
    planar_map(l, c0, c1, apply);
  });
}

// g = dy * activation'(y) is the gradient of the normalization's output (and the residual's);
// sum(g) and sum(g * (x - mean)) per channel give grad_bias, grad_weight and the input-gradient
// coefficients; then dx = (g - mean_g) * scale + (x - mean) * xmu_scale. g is formed again in the
// pass that writes dx (and grad_preactivation) rather than stored.
template <typename T, NormActivation kAct>
void backward(const Tensor& grad_output, const Tensor& x, const Tensor& y, const Tensor& weight,
              const Tensor& mean, const Tensor& var, double eps, bool training,
              const Tensor& grad_input, const Tensor& grad_weight, const Tensor& grad_bias,
              const Tensor& grad_preactivation) {
  const ChannelLayout l(x);
  const double count = static_cast<double>(l.count());
  const bool need_sums = training || grad_weight.defined() || grad_bias.defined();
  const T* __restrict xp = static_cast<const T*>(x.data_ptr());
  const T* __restrict dyp = static_cast<const T*>(grad_output.data_ptr());
  const T* __restrict yp = data_or_null<const T>(y);
  T* __restrict dxp = data_or_null<T>(grad_input);
  T* __restrict gpp = data_or_null<T>(grad_preactivation);
  const T* mean_p = static_cast<const T*>(mean.data_ptr());
  const T* var_p = static_cast<const T*>(var.data_ptr());
  const T* w_p = data_or_null<const T>(weight);
  T* gw_p = data_or_null<T>(grad_weight);
  T* gb_p = data_or_null<T>(grad_bias);
  ChannelGradCoeffs<T> coeffs(l.channels);
  auto finish_channel = [&](int64_t c, double sum_dy, double sum_dy_xmu) {
    if (gw_p != nullptr) gw_p[c] = static_cast<T>(sum_dy_xmu * batch_norm_invstd(var_p[c], eps));
    if (gb_p != nullptr) gb_p[c] = static_cast<T>(sum_dy);
    coeffs.set(c, batch_norm_grad_coeffs<T>(mean_p[c], var_p[c], eps, w_p ? w_p[c] : 1.0, sum_dy,
                                            sum_dy_xmu, count, training));
  };
  auto grad_at = [&](int64_t k) {
    if constexpr (kAct == NormActivation::kIdentity) {
      return dyp[k];  // (y is undefined)
    } else {
      return norm_activation_grad<kAct>(dyp[k], yp[k]);
    }
  };
  auto grad_terms = [&](int64_t k, int64_t c, T& a, T& b) {
    a = grad_at(k);
    b = a * (xp[k] - mean_p[c]);
  };
  const T* __restrict g_mean = coeffs.mean.data();
  const T* __restrict g_scale = coeffs.scale.data();
  const T* __restrict g_mean_dy = coeffs.mean_dy.data();
  const T* __restrict g_xmu_scale = coeffs.xmu_scale.data();
  auto input_grad = [&](int64_t k, int64_t c, T g) {
    return batch_norm_input_grad(
        g, xp[k], BatchNormGradCoeffs<T>{g_mean[c], g_scale[c], g_mean_dy[c], g_xmu_scale[c]});
  };
  // The element passes for the requested outputs; map(fn) runs fn(k, c) over the elements.
  auto write_grads = [&](const auto& map) {
    if (dxp != nullptr && gpp != nullptr) {
      map([&](int64_t k, int64_t c) {
        const T g = grad_at(k);
        gpp[k] = g;
        dxp[k] = input_grad(k, c, g);
      });
    } else if (dxp != nullptr) {
      map([&](int64_t k, int64_t c) { dxp[k] = input_grad(k, c, grad_at(k)); });
    } else if (gpp != nullptr) {
      map([&](int64_t k, int64_t) { gpp[k] = grad_at(k); });
    }
  };

  if (l.interleaved) {
    std::vector<double> sum_dy(l.channels), sum_dy_xmu(l.channels);
    if (need_sums) interleaved_sums<T>(l, grad_terms, sum_dy.data(), sum_dy_xmu.data());
    for (int64_t c = 0; c < l.channels; ++c) finish_channel(c, sum_dy[c], sum_dy_xmu[c]);
    write_grads([&](const auto& fn) { interleaved_map(l, fn); });
    return;
  }
  for_each_channel_group(l, 1, [&](int64_t c, int64_t) {
    double sum_dy = 0, sum_dy_xmu = 0;
    if (need_sums) planar_sums<T>(l, c, grad_terms, &sum_dy, &sum_dy_xmu);
    finish_channel(c, sum_dy, sum_dy_xmu);
    write_grads([&](const auto& fn) { planar_map(l, c, c + 1, fn); });
  });
}

void batch_norm_kernel(const Tensor& y, const Tensor& x, const Tensor& residual,
                       const Tensor& weight, const Tensor& bias, const Tensor& mean,
                       const Tensor& var, const Tensor& running_mean, const Tensor& running_var,
                       bool training, double momentum, double eps, NormActivation activation) {
  dispatch_floating_storage(x.dtype(), "batch_norm", [&](auto types) {
    using S = typename decltype(types)::storage;
    using C = typename decltype(types)::compute;
    with_norm_activation(activation, [&](auto act) {
      constexpr NormActivation kAct = decltype(act)::value;
      if (residual.defined()) {
        forward<S, C, kAct, true>(y, x, residual, weight, bias, mean, var, running_mean,
                                  running_var, training, momentum, eps);
      } else {
        forward<S, C, kAct, false>(y, x, residual, weight, bias, mean, var, running_mean,
                                   running_var, training, momentum, eps);
      }
    });
  });
}

void batch_norm_backward_kernel(const Tensor& grad_output, const Tensor& x, const Tensor& y,
                                const Tensor& weight, const Tensor& mean, const Tensor& var,
                                double eps, bool training, NormActivation activation,
                                const Tensor& grad_input, const Tensor& grad_weight,
                                const Tensor& grad_bias, const Tensor& grad_preactivation) {
  if (x.size(1) == 0) return;
  OMPQ_DISPATCH_FLOATING(x.dtype(), "batch_norm_backward", [&] {
    with_norm_activation(activation, [&](auto act) {
      backward<scalar_t, decltype(act)::value>(grad_output, x, y, weight, mean, var, eps, training,
                                               grad_input, grad_weight, grad_bias,
                                               grad_preactivation);
    });
  });
}

}  // namespace

void register_norm_kernels() {
  batch_norm_stub.register_kernel(DeviceType::kCPU, batch_norm_kernel);
  batch_norm_backward_stub.register_kernel(DeviceType::kCPU, batch_norm_backward_kernel);
}

}  // namespace ompq::cpu
