// CPU AdaRound kernels. w, alpha and their gradients are contiguous [outer, C, inner] arrays; work
// is split into fixed blocks of elements, walked as runs of elements that share one channel's
// scale and zero point so that the inner loops vectorize. The regularizer's sum adds per-block
// double partial sums in block order: the result does not depend on the thread count.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/cpu/register.h"
#include "core/ops/adaround.h"
#include "core/ops/adaround_math.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

constexpr int64_t kBlock = 8192;  // elements per work item

// Calls fn(c, begin, end) for each run [begin, end) of flat indices in [lo, hi) that lie in one
// row, and so share channel c.
template <typename Fn>
void for_each_channel_run(const ChannelLayout& layout, int64_t lo, int64_t hi, const Fn& fn) {
  while (lo < hi) {
    const int64_t row = lo / layout.inner;
    const int64_t end = std::min(hi, (row + 1) * layout.inner);
    fn(row % layout.channels, lo, end);
    lo = end;
  }
}

// Calls fn(c, begin, end) over every element of the layout, on all threads.
template <typename Fn>
void parallel_channel_runs(const ChannelLayout& layout, const Fn& fn) {
  const int64_t n = layout.outer * layout.channels * layout.inner;
  parallel_for(0, n, kBlock,
               [&](int64_t lo, int64_t hi) { for_each_channel_run(layout, lo, hi, fn); });
}

template <typename T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr;
}

// alpha = adaround_init_alpha(w, scale[c]).
template <typename T>
void init_impl(const Tensor& alpha, const Tensor& w, const Tensor& scale,
               const ChannelLayout& layout) {
  const T* __restrict__ wp = static_cast<const T*>(w.data_ptr());
  T* __restrict__ ap = static_cast<T*>(alpha.data_ptr());
  const T* s = static_cast<const T*>(scale.data_ptr());
  parallel_channel_runs(layout, [&](int64_t c, int64_t begin, int64_t end) {
    const T sc = s[c];
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) ap[i] = adaround_init_alpha(wp[i], sc);
  });
}

// out = the weight rounded by h(alpha) (soft) or [alpha >= 0] (hard), per channel c's grid.
template <typename T>
void quantize_impl(const Tensor& out, const Tensor& w, const Tensor& alpha, const Tensor& scale,
                   const Tensor& zero_point, const ChannelLayout& layout, QuantRange range,
                   bool hard) {
  const T* __restrict__ wp = static_cast<const T*>(w.data_ptr());
  const T* __restrict__ ap = static_cast<const T*>(alpha.data_ptr());
  T* __restrict__ op = static_cast<T*>(out.data_ptr());
  const T* s = static_cast<const T*>(scale.data_ptr());
  const T* z = data_or_null<T>(zero_point);
  const T qmin = static_cast<T>(range.qmin), qmax = static_cast<T>(range.qmax);
  parallel_channel_runs(layout, [&](int64_t c, int64_t begin, int64_t end) {
    const T sc = s[c], zp = z ? z[c] : T(0);
    if (hard) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) {
        op[i] = adaround_weight_value(wp[i], adaround_hard_h(ap[i]), sc, zp, qmin, qmax);
      }
    } else {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) {
        op[i] = adaround_weight_value(wp[i], rectified_sigmoid(ap[i]), sc, zp, qmin, qmax);
      }
    }
  });
}

// grad_alpha = d(soft weight)/d alpha * grad_output.
template <typename T>
void quantize_backward_impl(const Tensor& grad_alpha, const Tensor& grad_output, const Tensor& w,
                            const Tensor& alpha, const Tensor& scale, const Tensor& zero_point,
                            const ChannelLayout& layout, QuantRange range) {
  const T* __restrict__ gp = static_cast<const T*>(grad_output.data_ptr());
  const T* __restrict__ wp = static_cast<const T*>(w.data_ptr());
  const T* __restrict__ ap = static_cast<const T*>(alpha.data_ptr());
  T* __restrict__ gap = static_cast<T*>(grad_alpha.data_ptr());
  const T* s = static_cast<const T*>(scale.data_ptr());
  const T* z = data_or_null<T>(zero_point);
  const T qmin = static_cast<T>(range.qmin), qmax = static_cast<T>(range.qmax);
  parallel_channel_runs(layout, [&](int64_t c, int64_t begin, int64_t end) {
    const T sc = s[c], zp = z ? z[c] : T(0);
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      gap[i] = adaround_weight_grad(gp[i], wp[i], ap[i], sc, zp, qmin, qmax);
    }
  });
}

// out = sum of adaround_regularizer_term, per block in double, blocks added in order.
template <typename T>
void regularizer_impl(const Tensor& out, const Tensor& alpha, double beta) {
  const T* __restrict__ ap = static_cast<const T*>(alpha.data_ptr());
  const int64_t n = alpha.numel();
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  const T b = static_cast<T>(beta);
  std::vector<double> partial(blocks);
  parallel_for(0, blocks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      const int64_t end = std::min(n, (k + 1) * kBlock);
      double sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = k * kBlock; i < end; ++i) {
        sum += static_cast<double>(adaround_regularizer_term(ap[i], b));
      }
      partial[k] = sum;
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  *static_cast<T*>(out.data_ptr()) = static_cast<T>(total);
}

// grad_alpha = grad * d term / d alpha.
template <typename T>
void regularizer_backward_impl(const Tensor& grad_alpha, const Tensor& grad, const Tensor& alpha,
                               double beta) {
  const T* __restrict__ ap = static_cast<const T*>(alpha.data_ptr());
  T* __restrict__ gap = static_cast<T*>(grad_alpha.data_ptr());
  const T g = *static_cast<const T*>(grad.data_ptr());
  const T b = static_cast<T>(beta);
  parallel_for(0, alpha.numel(), kBlock, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) gap[i] = g * adaround_regularizer_grad(ap[i], b);
  });
}

void init_kernel(const Tensor& alpha, const Tensor& w, const Tensor& scale,
                 const ChannelLayout& layout) {
  OMPQ_DISPATCH_FLOATING(w.dtype(), "adaround_init",
                         [&] { init_impl<scalar_t>(alpha, w, scale, layout); });
}

void quantize_kernel(const Tensor& out, const Tensor& w, const Tensor& alpha, const Tensor& scale,
                     const Tensor& zero_point, const ChannelLayout& layout, QuantRange range,
                     bool hard) {
  OMPQ_DISPATCH_FLOATING(w.dtype(), "adaround_quantize", [&] {
    quantize_impl<scalar_t>(out, w, alpha, scale, zero_point, layout, range, hard);
  });
}

void quantize_backward_kernel(const Tensor& grad_alpha, const Tensor& grad_output, const Tensor& w,
                              const Tensor& alpha, const Tensor& scale, const Tensor& zero_point,
                              const ChannelLayout& layout, QuantRange range) {
  OMPQ_DISPATCH_FLOATING(w.dtype(), "adaround_quantize_backward", [&] {
    quantize_backward_impl<scalar_t>(grad_alpha, grad_output, w, alpha, scale, zero_point, layout,
                                     range);
  });
}

void regularizer_kernel(const Tensor& out, const Tensor& alpha, double beta) {
  OMPQ_DISPATCH_FLOATING(alpha.dtype(), "adaround_regularizer",
                         [&] { regularizer_impl<scalar_t>(out, alpha, beta); });
}

void regularizer_backward_kernel(const Tensor& grad_alpha, const Tensor& grad, const Tensor& alpha,
                                 double beta) {
  OMPQ_DISPATCH_FLOATING(alpha.dtype(), "adaround_regularizer_backward", [&] {
    regularizer_backward_impl<scalar_t>(grad_alpha, grad, alpha, beta);
  });
}

}  // namespace

void register_adaround_kernels() {
  adaround_init_stub.register_kernel(DeviceType::kCPU, init_kernel);
  adaround_quantize_stub.register_kernel(DeviceType::kCPU, quantize_kernel);
  adaround_quantize_backward_stub.register_kernel(DeviceType::kCPU, quantize_backward_kernel);
  adaround_regularizer_stub.register_kernel(DeviceType::kCPU, regularizer_kernel);
  adaround_regularizer_backward_stub.register_kernel(DeviceType::kCPU, regularizer_backward_kernel);
}

}  // namespace ompq::cpu
