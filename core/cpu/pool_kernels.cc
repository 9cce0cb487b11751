// CPU pooling: max, average (count_include_pad) and adaptive average, forward and backward.
// Every tensor is contiguous NCHW; work is split by (n, c) plane, so each task reads and writes
// its own planes only and the backward scatters need no atomics.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/cpu/register.h"
#include "core/ops/pool.h"
#include "core/ops/pool_math.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

struct PlaneDims {
  int64_t planes, in_h, in_w, out_h, out_w;
  PlaneDims(const Shape& in, const Shape& out)
      : planes(in[0] * in[1]), in_h(in[2]), in_w(in[3]), out_h(out[2]), out_w(out[3]) {}
  int64_t in_size() const { return in_h * in_w; }
  int64_t out_size() const { return out_h * out_w; }
  // Enough planes per task that tiny planes are not scheduled one by one.
  int64_t grain() const { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, in_size())); }
};

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
// (and a NaN wins), as in PyTorch.
template <typename T>
void max_pool2d_forward(const Tensor& out, const Tensor& indices, const Tensor& x,
                        const Pool2dParams& p) {
  const PlaneDims d(x.shape(), out.shape());
  OMPQ_CHECK(d.in_size() < (int64_t{1} << 31), "max_pool2d: input planes of ", d.in_size(),
             " elements exceed the 2^31 positions the kernel tracks");
  const auto rows = windows(d.out_h, p.kernel[0], p.stride[0], p.padding[0], d.in_h);
  const auto cols = windows(d.out_w, p.kernel[1], p.stride[1], p.padding[1], d.in_w);
  std::vector<ColumnSpan> spans(p.kernel[1]);
  for (int64_t j = 0; j < p.kernel[1]; ++j) {
    spans[j] = kernel_column_span(j, p.stride[1], p.padding[1], d.in_w, d.out_w);
  }
  const int32_t stride = static_cast<int32_t>(p.stride[1]);
  const int32_t in_w = static_cast<int32_t>(d.in_w);
  const T* X = x.data<T>();
  T* Y = out.data<T>();
  int64_t* I = indices.data<int64_t>();
  parallel_for(0, d.planes, d.grain(), [&](int64_t lo, int64_t hi) {
    std::vector<int32_t> position(d.out_w);
    int32_t* __restrict pos = position.data();
    for (int64_t plane = lo; plane < hi; ++plane) {
      const T* xp = X + plane * d.in_size();
      for (int64_t oh = 0; oh < d.out_h; ++oh) {
        const PoolWindow& r = rows[oh];
        T* __restrict best = Y + plane * d.out_size() + oh * d.out_w;
        for (int64_t ow = 0; ow < d.out_w; ++ow) {
          pos[ow] = static_cast<int32_t>(r.begin * d.in_w + cols[ow].begin);
          best[ow] = xp[pos[ow]];
        }
        for (int64_t ih = r.begin; ih < r.end; ++ih) {
          const T* __restrict row = xp + ih * d.in_w;
          const int32_t row_offset = static_cast<int32_t>(ih) * in_w;
          for (int64_t j = 0; j < p.kernel[1]; ++j) {
            const int32_t column_offset = static_cast<int32_t>(j - p.padding[1]);
            const int32_t begin = static_cast<int32_t>(spans[j].begin);
            const int32_t end = static_cast<int32_t>(spans[j].end);
#pragma omp simd
            for (int32_t ow = begin; ow < end; ++ow) {
              const int32_t iw = ow * stride + column_offset;
              const T v = row[iw];
              const bool take = v > best[ow] || v != v;
              best[ow] = take ? v : best[ow];
              pos[ow] = take ? row_offset + iw : pos[ow];
            }
          }
        }
        int64_t* best_index = I + plane * d.out_size() + oh * d.out_w;
        for (int64_t ow = 0; ow < d.out_w; ++ow) best_index[ow] = pos[ow];
      }
    }
  });
}

template <typename T>
void max_pool2d_backward(const Tensor& grad_x, const Tensor& grad_out, const Tensor& indices) {
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

// ---- average (fixed windows or adaptive bins) ---------------------------------------------------

// out = sum over each window / (its divisor extents' product).
template <typename T>
void average_forward(const Tensor& out, const Tensor& x, const std::vector<PoolWindow>& rows,
                     const std::vector<PoolWindow>& cols) {
  const PlaneDims d(x.shape(), out.shape());
  const T* X = x.data<T>();
  T* Y = out.data<T>();
  parallel_for(0, d.planes, d.grain(), [&](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane) {
      const T* xp = X + plane * d.in_size();
      T* yp = Y + plane * d.out_size();
      for (int64_t oh = 0; oh < d.out_h; ++oh) {
        const PoolWindow& r = rows[oh];
        for (int64_t ow = 0; ow < d.out_w; ++ow) {
          const PoolWindow& c = cols[ow];
          T sum = 0;
          for (int64_t ih = r.begin; ih < r.end; ++ih) {
            const T* row = xp + ih * d.in_w;
#pragma omp simd reduction(+ : sum)
            for (int64_t iw = c.begin; iw < c.end; ++iw) sum += row[iw];
          }
          yp[oh * d.out_w + ow] = sum / static_cast<T>(r.divisor_extent * c.divisor_extent);
        }
      }
    }
  });
}

// grad_x[pixel] = sum over the windows containing it of grad_out / divisor.
template <typename T>
void average_backward(const Tensor& grad_x, const Tensor& grad_out,
                      const std::vector<PoolWindow>& rows, const std::vector<PoolWindow>& cols) {
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

// ---- dtype dispatch
// ------------------------------------------------------------------------------

void max_pool2d_kernel(const Tensor& out, const Tensor& indices, const Tensor& x,
                       const Pool2dParams& p) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "max_pool2d",
                         [&] { max_pool2d_forward<scalar_t>(out, indices, x, p); });
}

void max_pool2d_backward_kernel(const Tensor& grad_x, const Tensor& grad_out,
                                const Tensor& indices) {
  OMPQ_DISPATCH_FLOATING(grad_out.dtype(), "max_pool2d_backward",
                         [&] { max_pool2d_backward<scalar_t>(grad_x, grad_out, indices); });
}

void avg_pool2d_kernel(const Tensor& out, const Tensor& x, const Pool2dParams& p) {
  const auto rows = windows(out.size(2), p.kernel[0], p.stride[0], p.padding[0], x.size(2));
  const auto cols = windows(out.size(3), p.kernel[1], p.stride[1], p.padding[1], x.size(3));
  OMPQ_DISPATCH_FLOATING(x.dtype(), "avg_pool2d",
                         [&] { average_forward<scalar_t>(out, x, rows, cols); });
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
  OMPQ_DISPATCH_FLOATING(x.dtype(), "adaptive_avg_pool2d",
                         [&] { average_forward<scalar_t>(out, x, rows, cols); });
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
