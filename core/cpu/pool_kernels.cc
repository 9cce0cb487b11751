// CPU pooling: max, average (count_include_pad) and adaptive average, forward and backward, on
// tensors that are all contiguous NCHW or all channels_last (NHWC in memory).
// NCHW: work is split by (n, c) plane, so each task reads and writes its own planes only and the
// backward scatters need no atomics. NHWC: the channels are the vector lanes of every loop; the
// forward passes are split by output row (n, oh), the backward ones by image, so that again no
// two tasks write the same input pixel. Both layouts meet each window in row-major order and
// scatter each input pixel's gradients in output order, so they give the same bits.
// The forward passes also read and write bf16/f16 (compared and summed in f32); the backward
// passes take f32 and f64.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/cpu/register.h"
#include "core/cpu/storage_dispatch.h"
#include "core/ops/conv.h"
#include "core/ops/pool.h"
#include "core/ops/pool_math.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

constexpr int64_t kGrainElements = 16384;

struct PlaneDims {
  int64_t batch, channels, planes, in_h, in_w, out_h, out_w;
  PlaneDims(const Shape& in, const Shape& out)
      : batch(in[0]),
        channels(in[1]),
        planes(in[0] * in[1]),
        in_h(in[2]),
        in_w(in[3]),
        out_h(out[2]),
        out_w(out[3]) {}
  int64_t in_size() const { return in_h * in_w; }
  int64_t out_size() const { return out_h * out_w; }
  // Enough planes (NCHW) or images (NHWC) per task that tiny ones are not scheduled one by one.
  int64_t grain() const {
    return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, in_size()));
  }
  int64_t image_grain() const {
    return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, in_size() * channels));
  }
  // Output rows (n, oh) per NHWC forward task.
  int64_t row_grain() const {
    return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, out_w * channels));
  }
};

// Whether a kernel's tensors are channels_last: one of them (`a` or `b`) says so unless both have
// 1x1 planes, where the two layouts are the same memory.
bool nhwc(const Tensor& a, const Tensor& b) { return is_channels_last(a) || is_channels_last(b); }

// The windows of every output row (or column) along one axis, computed once per call.
std::vector<PoolWindow> windows(int64_t out, int64_t kernel, int64_t stride, int64_t pad,
                                int64_t in) {
  std::vector<PoolWindow> w(out);
  for (int64_t o = 0; o < out; ++o) w[o] = pool_window(o, kernel, stride, pad, in);
  return w;
}

std::vector<PoolWindow> adaptive_windows(int64_t out, int64_t in) {
  std::vector<PoolWindow> w(out);
  for (int64_t o = 0; o < out; ++o) {
    int64_t begin = adaptive_bin_begin(o, in, out), end = adaptive_bin_end(o, in, out);
    w[o] = PoolWindow{begin, end, end - begin};
  }
  return w;
}

// ---- max
// -----------------------------------------------------------------------------------------

// The output columns [begin, end) whose input column ow * stride - pad + j lies inside the input,
// for kernel column j.
struct ColumnSpan {
  int64_t begin, end;
};

ColumnSpan kernel_column_span(int64_t j, int64_t stride, int64_t pad, int64_t in, int64_t out) {
  const int64_t first = pad - j;          // ow * stride >= first
  const int64_t last = in - 1 + pad - j;  // ow * stride <= last
  if (last < 0) return {0, 0};
  const int64_t begin = first <= 0 ? 0 : (first + stride - 1) / stride;
  return {begin, std::min(out, last / stride + 1)};
}

// Each output row keeps running maxima for all its columns; every window row ih and kernel
// column j then updates them in one strided pass. Positions are tracked as int32 within the
// plane so that values and positions share vector lanes (int64 positions stop GCC from
// vectorizing). Each output still meets its window in row-major order, so the first maximum wins
// (and a NaN wins), as in PyTorch. S is the stored type, C the compared one (storage_dispatch.h;
// widening is exact and keeps the order, so the output is the chosen input element).
template <typename S, typename C>
void max_pool2d_forward_nchw(const Tensor& out, const Tensor& indices, const Tensor& x,
                             const Pool2dParams& p) {
  const PlaneDims d(x.shape(), out.shape());
  const auto rows = windows(d.out_h, p.kernel[0], p.stride[0], p.padding[0], d.in_h);
  const auto cols = windows(d.out_w, p.kernel[1], p.stride[1], p.padding[1], d.in_w);
  std::vector<ColumnSpan> spans(p.kernel[1]);
  for (int64_t j = 0; j < p.kernel[1]; ++j) {
    spans[j] = kernel_column_span(j, p.stride[1], p.padding[1], d.in_w, d.out_w);
  }
  const int32_t stride = static_cast<int32_t>(p.stride[1]);
  const int32_t in_w = static_cast<int32_t>(d.in_w);
  const S* X = x.data<S>();
  S* Y = out.data<S>();
  int64_t* I = indices.data<int64_t>();
  parallel_for(0, d.planes, d.grain(), [&](int64_t lo, int64_t hi) {
    std::vector<int32_t> position(d.out_w);
    std::vector<C> maxima(d.out_w);
    int32_t* __restrict pos = position.data();
    C* __restrict best = maxima.data();
    for (int64_t plane = lo; plane < hi; ++plane) {
      const S* xp = X + plane * d.in_size();
      for (int64_t oh = 0; oh < d.out_h; ++oh) {
        const PoolWindow& r = rows[oh];
        for (int64_t ow = 0; ow < d.out_w; ++ow) {
          pos[ow] = static_cast<int32_t>(r.begin * d.in_w + cols[ow].begin);
          best[ow] = convert<C>(xp[pos[ow]]);
        }
        for (int64_t ih = r.begin; ih < r.end; ++ih) {
          const S* __restrict row = xp + ih * d.in_w;
          const int32_t row_offset = static_cast<int32_t>(ih) * in_w;
          for (int64_t j = 0; j < p.kernel[1]; ++j) {
            const int32_t column_offset = static_cast<int32_t>(j - p.padding[1]);
            const int32_t begin = static_cast<int32_t>(spans[j].begin);
            const int32_t end = static_cast<int32_t>(spans[j].end);
#pragma omp simd
            for (int32_t ow = begin; ow < end; ++ow) {
              const int32_t iw = ow * stride + column_offset;
              const C v = convert<C>(row[iw]);
              const bool take = v > best[ow] || v != v;
              best[ow] = take ? v : best[ow];
              pos[ow] = take ? row_offset + iw : pos[ow];
            }
          }
        }
        S* y = Y + plane * d.out_size() + oh * d.out_w;
        int64_t* best_index = I + plane * d.out_size() + oh * d.out_w;
        for (int64_t ow = 0; ow < d.out_w; ++ow) {
          y[ow] = convert<S>(best[ow]);
          best_index[ow] = pos[ow];
        }
      }
    }
  });
}

// NHWC: running maxima and their positions for the C channels of one output pixel, updated by
// each window pixel in row-major order (int32 positions share vector lanes with f32 values).
template <typename S, typename C>
void max_pool2d_forward_nhwc(const Tensor& out, const Tensor& indices, const Tensor& x,
                             const Pool2dParams& p) {
  const PlaneDims d(x.shape(), out.shape());
  const auto rows = windows(d.out_h, p.kernel[0], p.stride[0], p.padding[0], d.in_h);
  const auto cols = windows(d.out_w, p.kernel[1], p.stride[1], p.padding[1], d.in_w);
  const int64_t channels = d.channels;
  const S* X = x.data<S>();
  S* Y = out.data<S>();
  int64_t* I = indices.data<int64_t>();
  parallel_for(0, d.batch * d.out_h, d.row_grain(), [&](int64_t lo, int64_t hi) {
    std::vector<int32_t> position(channels);
    std::vector<C> maxima(channels);
    int32_t* __restrict pos = position.data();
    C* __restrict best = maxima.data();
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t n = row / d.out_h, oh = row % d.out_h;
      const PoolWindow& r = rows[oh];
      const S* image = X + n * d.in_size() * channels;
      for (int64_t ow = 0; ow < d.out_w; ++ow) {
        const PoolWindow& c = cols[ow];
        const int64_t o = row * d.out_w + ow;
        const S* first = image + (r.begin * d.in_w + c.begin) * channels;
        const int32_t first_position = static_cast<int32_t>(r.begin * d.in_w + c.begin);
#pragma omp simd
        for (int64_t k = 0; k < channels; ++k) {
          best[k] = convert<C>(first[k]);
          pos[k] = first_position;
        }
        for (int64_t ih = r.begin; ih < r.end; ++ih) {
          for (int64_t iw = c.begin; iw < c.end; ++iw) {
            const int32_t here = static_cast<int32_t>(ih * d.in_w + iw);
            const S* __restrict pixel = image + here * channels;
#pragma omp simd
            for (int64_t k = 0; k < channels; ++k) {
              const C v = convert<C>(pixel[k]);
              const bool take = v > best[k] || v != v;
              best[k] = take ? v : best[k];
              pos[k] = take ? here : pos[k];
            }
          }
        }
        S* __restrict y = Y + o * channels;
        int64_t* best_index = I + o * channels;
        for (int64_t k = 0; k < channels; ++k) {
          y[k] = convert<S>(best[k]);
          best_index[k] = pos[k];
        }
      }
    }
  });
}

template <typename T>
void max_pool2d_backward_nchw(const Tensor& grad_x, const Tensor& grad_out, const Tensor& indices) {
  const PlaneDims d(grad_x.shape(), grad_out.shape());
  const T* G = grad_out.data<T>();
  const int64_t* I = indices.data<int64_t>();
  T* GX = grad_x.data<T>();
  parallel_for(0, d.planes, d.grain(), [&](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane) {
      T* gx = GX + plane * d.in_size();
      const T* g = G + plane * d.out_size();
      const int64_t* ip = I + plane * d.out_size();
      std::fill(gx, gx + d.in_size(), T(0));
      for (int64_t o = 0; o < d.out_size(); ++o) gx[ip[o]] += g[o];
    }
  });
}

// NHWC: grad_x[n, indices[o, k], k] += grad_out[o, k], image by image, in output order.
template <typename T>
void max_pool2d_backward_nhwc(const Tensor& grad_x, const Tensor& grad_out, const Tensor& indices) {
  const PlaneDims d(grad_x.shape(), grad_out.shape());
  const int64_t channels = d.channels;
  const T* G = grad_out.data<T>();
  const int64_t* I = indices.data<int64_t>();
  T* GX = grad_x.data<T>();
  parallel_for(0, d.batch, d.image_grain(), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      T* gx = GX + n * d.in_size() * channels;
      std::fill(gx, gx + d.in_size() * channels, T(0));
      for (int64_t o = n * d.out_size(); o < (n + 1) * d.out_size(); ++o) {
        const T* g = G + o * channels;
        const int64_t* ip = I + o * channels;
        for (int64_t k = 0; k < channels; ++k) gx[ip[k] * channels + k] += g[k];
      }
    }
  });
}

// ---- average (fixed windows or adaptive bins) ---------------------------------------------------

// out = sum over each window / (its divisor extents' product), summed in C.
template <typename S, typename C>
void average_forward_nchw(const Tensor& out, const Tensor& x, const std::vector<PoolWindow>& rows,
                          const std::vector<PoolWindow>& cols) {
  const PlaneDims d(x.shape(), out.shape());
  const S* X = x.data<S>();
  S* Y = out.data<S>();
  parallel_for(0, d.planes, d.grain(), [&](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane) {
      const S* xp = X + plane * d.in_size();
      S* yp = Y + plane * d.out_size();
      for (int64_t oh = 0; oh < d.out_h; ++oh) {
        const PoolWindow& r = rows[oh];
        for (int64_t ow = 0; ow < d.out_w; ++ow) {
          const PoolWindow& c = cols[ow];
          C sum = 0;
          for (int64_t ih = r.begin; ih < r.end; ++ih) {
            const S* row = xp + ih * d.in_w;
#pragma omp simd reduction(+ : sum)
            for (int64_t iw = c.begin; iw < c.end; ++iw) sum += convert<C>(row[iw]);
          }
          yp[oh * d.out_w + ow] =
              convert<S>(sum / static_cast<C>(r.divisor_extent * c.divisor_extent));
        }
      }
    }
  });
}

// NHWC: the window's pixels summed along the channel lanes, in row-major order.
template <typename S, typename C>
void average_forward_nhwc(const Tensor& out, const Tensor& x, const std::vector<PoolWindow>& rows,
                          const std::vector<PoolWindow>& cols) {
  const PlaneDims d(x.shape(), out.shape());
  const int64_t channels = d.channels;
  const S* X = x.data<S>();
  S* Y = out.data<S>();
  parallel_for(0, d.batch * d.out_h, d.row_grain(), [&](int64_t lo, int64_t hi) {
    std::vector<C> sums(channels);
    C* __restrict sum = sums.data();
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t n = row / d.out_h, oh = row % d.out_h;
      const PoolWindow& r = rows[oh];
      const S* image = X + n * d.in_size() * channels;
      for (int64_t ow = 0; ow < d.out_w; ++ow) {
        const PoolWindow& c = cols[ow];
        std::fill(sum, sum + channels, C(0));
        for (int64_t ih = r.begin; ih < r.end; ++ih) {
          for (int64_t iw = c.begin; iw < c.end; ++iw) {
            const S* __restrict pixel = image + (ih * d.in_w + iw) * channels;
#pragma omp simd
            for (int64_t k = 0; k < channels; ++k) sum[k] += convert<C>(pixel[k]);
          }
        }
        const C divisor = static_cast<C>(r.divisor_extent * c.divisor_extent);
        S* __restrict y = Y + (row * d.out_w + ow) * channels;
#pragma omp simd
        for (int64_t k = 0; k < channels; ++k) y[k] = convert<S>(sum[k] / divisor);
      }
    }
  });
}

// grad_x[pixel] = sum over the windows containing it of grad_out / divisor.
template <typename T>
void average_backward_nchw(const Tensor& grad_x, const Tensor& grad_out,
                           const std::vector<PoolWindow>& rows,
                           const std::vector<PoolWindow>& cols) {
  const PlaneDims d(grad_x.shape(), grad_out.shape());
  const T* G = grad_out.data<T>();
  T* GX = grad_x.data<T>();
  parallel_for(0, d.planes, d.grain(), [&](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane) {
      T* gx = GX + plane * d.in_size();
      const T* g = G + plane * d.out_size();
      std::fill(gx, gx + d.in_size(), T(0));
      for (int64_t oh = 0; oh < d.out_h; ++oh) {
        const PoolWindow& r = rows[oh];
        for (int64_t ow = 0; ow < d.out_w; ++ow) {
          const PoolWindow& c = cols[ow];
          const T share =
              g[oh * d.out_w + ow] / static_cast<T>(r.divisor_extent * c.divisor_extent);
          for (int64_t ih = r.begin; ih < r.end; ++ih) {
            T* row = gx + ih * d.in_w;
#pragma omp simd
            for (int64_t iw = c.begin; iw < c.end; ++iw) row[iw] += share;
          }
        }
      }
    }
  });
}

// NHWC: the same scatter, image by image, the shares of one output pixel along the channel lanes.
template <typename T>
void average_backward_nhwc(const Tensor& grad_x, const Tensor& grad_out,
                           const std::vector<PoolWindow>& rows,
                           const std::vector<PoolWindow>& cols) {
  const PlaneDims d(grad_x.shape(), grad_out.shape());
  const int64_t channels = d.channels;
  const T* G = grad_out.data<T>();
  T* GX = grad_x.data<T>();
  parallel_for(0, d.batch, d.image_grain(), [&](int64_t lo, int64_t hi) {
    std::vector<T> shares(channels);
    T* __restrict share = shares.data();
    for (int64_t n = lo; n < hi; ++n) {
      T* gx = GX + n * d.in_size() * channels;
      std::fill(gx, gx + d.in_size() * channels, T(0));
      for (int64_t oh = 0; oh < d.out_h; ++oh) {
        const PoolWindow& r = rows[oh];
        for (int64_t ow = 0; ow < d.out_w; ++ow) {
          const PoolWindow& c = cols[ow];
          const T* g = G + ((n * d.out_h + oh) * d.out_w + ow) * channels;
          const T divisor = static_cast<T>(r.divisor_extent * c.divisor_extent);
#pragma omp simd
          for (int64_t k = 0; k < channels; ++k) share[k] = g[k] / divisor;
          for (int64_t ih = r.begin; ih < r.end; ++ih) {
            for (int64_t iw = c.begin; iw < c.end; ++iw) {
              T* __restrict pixel = gx + (ih * d.in_w + iw) * channels;
#pragma omp simd
              for (int64_t k = 0; k < channels; ++k) pixel[k] += share[k];
            }
          }
        }
      }
    }
  });
}

template <typename S, typename C>
void average_forward(const Tensor& out, const Tensor& x, const std::vector<PoolWindow>& rows,
                     const std::vector<PoolWindow>& cols) {
  if (nhwc(x, out)) return average_forward_nhwc<S, C>(out, x, rows, cols);
  average_forward_nchw<S, C>(out, x, rows, cols);
}

template <typename T>
void average_backward(const Tensor& grad_x, const Tensor& grad_out,
                      const std::vector<PoolWindow>& rows, const std::vector<PoolWindow>& cols) {
  if (nhwc(grad_x, grad_out)) return average_backward_nhwc<T>(grad_x, grad_out, rows, cols);
  average_backward_nchw<T>(grad_x, grad_out, rows, cols);
}

// ---- layout and dtype dispatch
// ------------------------------------------------------------------------------

void average_forward_dispatch(const Tensor& out, const Tensor& x,
                              const std::vector<PoolWindow>& rows,
                              const std::vector<PoolWindow>& cols, const char* op) {
  dispatch_floating_storage(x.dtype(), op, [&](auto types) {
    average_forward<typename decltype(types)::storage, typename decltype(types)::compute>(
        out, x, rows, cols);
  });
}

void max_pool2d_kernel(const Tensor& out, const Tensor& indices, const Tensor& x,
                       const Pool2dParams& p) {
  // Both layouts track positions within a plane as int32 (they share vector lanes with values).
  const int64_t plane = x.size(2) * x.size(3);
  OMPQ_CHECK(plane < (int64_t{1} << 31), "max_pool2d: input planes of ", plane,
             " elements exceed the 2^31 positions the kernel tracks");
  dispatch_floating_storage(x.dtype(), "max_pool2d", [&](auto types) {
    using S = typename decltype(types)::storage;
    using C = typename decltype(types)::compute;
    if (nhwc(x, out)) return max_pool2d_forward_nhwc<S, C>(out, indices, x, p);
    max_pool2d_forward_nchw<S, C>(out, indices, x, p);
  });
}

void max_pool2d_backward_kernel(const Tensor& grad_x, const Tensor& grad_out,
                                const Tensor& indices) {
  OMPQ_DISPATCH_FLOATING(grad_out.dtype(), "max_pool2d_backward", [&] {
    if (nhwc(grad_x, grad_out))
      return max_pool2d_backward_nhwc<scalar_t>(grad_x, grad_out, indices);
    max_pool2d_backward_nchw<scalar_t>(grad_x, grad_out, indices);
  });
}

void avg_pool2d_kernel(const Tensor& out, const Tensor& x, const Pool2dParams& p) {
  const auto rows = windows(out.size(2), p.kernel[0], p.stride[0], p.padding[0], x.size(2));
  const auto cols = windows(out.size(3), p.kernel[1], p.stride[1], p.padding[1], x.size(3));
  average_forward_dispatch(out, x, rows, cols, "avg_pool2d");
}

void avg_pool2d_backward_kernel(const Tensor& grad_x, const Tensor& grad_out,
                                const Pool2dParams& p) {
  const auto rows =
      windows(grad_out.size(2), p.kernel[0], p.stride[0], p.padding[0], grad_x.size(2));
  const auto cols =
      windows(grad_out.size(3), p.kernel[1], p.stride[1], p.padding[1], grad_x.size(3));
  OMPQ_DISPATCH_FLOATING(grad_out.dtype(), "avg_pool2d_backward",
                         [&] { average_backward<scalar_t>(grad_x, grad_out, rows, cols); });
}

void adaptive_avg_pool2d_kernel(const Tensor& out, const Tensor& x) {
  const auto rows = adaptive_windows(out.size(2), x.size(2));
  const auto cols = adaptive_windows(out.size(3), x.size(3));
  average_forward_dispatch(out, x, rows, cols, "adaptive_avg_pool2d");
}

void adaptive_avg_pool2d_backward_kernel(const Tensor& grad_x, const Tensor& grad_out) {
  const auto rows = adaptive_windows(grad_out.size(2), grad_x.size(2));
  const auto cols = adaptive_windows(grad_out.size(3), grad_x.size(3));
  OMPQ_DISPATCH_FLOATING(grad_out.dtype(), "adaptive_avg_pool2d_backward",
                         [&] { average_backward<scalar_t>(grad_x, grad_out, rows, cols); });
}

}  // namespace

void register_pool_kernels() {
  max_pool2d_stub.register_kernel(DeviceType::kCPU, max_pool2d_kernel);
  max_pool2d_backward_stub.register_kernel(DeviceType::kCPU, max_pool2d_backward_kernel);
  avg_pool2d_stub.register_kernel(DeviceType::kCPU, avg_pool2d_kernel);
  avg_pool2d_backward_stub.register_kernel(DeviceType::kCPU, avg_pool2d_backward_kernel);
  adaptive_avg_pool2d_stub.register_kernel(DeviceType::kCPU, adaptive_avg_pool2d_kernel);
  adaptive_avg_pool2d_backward_stub.register_kernel(DeviceType::kCPU,
                                                    adaptive_avg_pool2d_backward_kernel);
}

}  // namespace ompq::cpu
