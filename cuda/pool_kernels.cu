// CUDA pooling: max (with indices), average (count_include_pad) and adaptive average, forward and
// backward, on tensors that are all contiguous NCHW or all channels_last (NHWC in memory), with
// the window bounds of core/ops/pool_math.h (shared with the CPU). One thread per element of the
// output (forward) or input (average backward), in memory order: in channels_last consecutive
// threads take consecutive channels of one pixel, so every access of a warp is coalesced. Each
// forward thread walks its window in row-major order, as the CPU does, so max values and indices
// (first maximum; NaN wins) are the CPU's exactly, and so is the channels_last average, which
// the CPU also adds in row-major order (its NCHW loop adds in vector lanes).
//  - average backward gathers: one thread per input element sums the shares of the windows that
//    contain it in ascending output order, the order in which the CPU scatters them, so results
//    are bitwise the CPU's and need no atomics;
//  - max backward scatters grad_out[o] into grad_x[indices[o]] by atomicAdd (the kernel is not
//  given
//    the window parameters, so it cannot gather). A pixel that is the maximum of at most two
//    windows gets an exact, order-independent sum; one that is the maximum of three or more
//    overlapping windows may differ in the last bit from run to run.
#include <type_traits>

#include "core/ops/conv.h"
#include "core/ops/pool.h"
#include "core/ops/pool_math.h"
#include "cuda/launch.cuh"
#include "cuda/pool_layout.h"
#include "cuda/register.h"

namespace ompq::cuda {
namespace {

// One axis of fixed windows (kernel, stride, padding).
struct FixedAxis {
  int64_t kernel, stride, pad, in, out;
  __device__ PoolWindow at(int64_t o) const { return pool_window(o, kernel, stride, pad, in); }
  __device__ void candidates(int64_t i, int64_t* first, int64_t* last) const {
    pool_outputs_covering(i, kernel, stride, pad, out, first, last);
  }
};

// One axis of adaptive bins.
struct AdaptiveAxis {
  int64_t in, out;
  __device__ PoolWindow at(int64_t o) const {
    const int64_t begin = adaptive_bin_begin(o, in, out), end = adaptive_bin_end(o, in, out);
    return {begin, end, end - begin};
  }
  __device__ void candidates(int64_t i, int64_t* first, int64_t* last) const {
    adaptive_outputs_covering(i, in, out, first, last);
  }
};

// out[o], indices[o] = the first maximum of o's window (a NaN wins) and its position h * W + w.
template <typename T, bool kChannelsLast>
struct MaxForward {
  T* out;
  int64_t* indices;
  const T* x;
  PoolLayout<kChannelsLast> layout;
  FixedAxis rows, cols;
  template <typename index_t>
  __device__ void operator()(index_t o, const index_t*) const {
    index_t n, c, oh, ow;
    layout.split(o, rows.out, cols.out, &n, &c, &oh, &ow);
    const PoolWindow r = rows.at(oh), w = cols.at(ow);
    const PlaneSpan xp = layout.plane(n, c, rows.in * cols.in);
    int64_t best_position = r.begin * cols.in + w.begin;
    T best = x[xp[best_position]];
    for (int64_t ih = r.begin; ih < r.end; ++ih) {
      for (int64_t iw = w.begin; iw < w.end; ++iw) {
        const T v = x[xp[ih * cols.in + iw]];
        if (v > best || v != v) {
          best = v;
          best_position = ih * cols.in + iw;
        }
      }
    }
    out[o] = best;
    indices[o] = best_position;
  }
};

// grad_x[plane of o][indices[o]] += grad_out[o]; grad_x is zeroed first.
template <typename T, bool kChannelsLast>
struct MaxBackward {
  T* grad_x;
  const T* grad_out;
  const int64_t* indices;
  PoolLayout<kChannelsLast> layout;
  int64_t out_rows, out_cols, in_size;
  template <typename index_t>
  __device__ void operator()(index_t o, const index_t*) const {
    index_t n, c, oh, ow;
    layout.split(o, out_rows, out_cols, &n, &c, &oh, &ow);
    atomicAdd(grad_x + layout.plane(n, c, in_size)[indices[o]], grad_out[o]);
  }
};

// out[o] = the sum of o's window / the product of its divisor extents.
template <typename T, typename Axis, bool kChannelsLast>
struct AverageForward {
  T* out;
  const T* x;
  PoolLayout<kChannelsLast> layout;
  Axis rows, cols;
  template <typename index_t>
  __device__ void operator()(index_t o, const index_t*) const {
    index_t n, c, oh, ow;
    layout.split(o, rows.out, cols.out, &n, &c, &oh, &ow);
    const PoolWindow r = rows.at(oh), w = cols.at(ow);
    const PlaneSpan xp = layout.plane(n, c, rows.in * cols.in);
    T sum = 0;
    for (int64_t ih = r.begin; ih < r.end; ++ih) {
      for (int64_t iw = w.begin; iw < w.end; ++iw) sum += x[xp[ih * cols.in + iw]];
    }
    out[o] = sum / static_cast<T>(r.divisor_extent * w.divisor_extent);
  }
};

// grad_x[i] = the sum over the windows containing i, in ascending output order, of
// grad_out / the window's divisor.
template <typename T, typename Axis, bool kChannelsLast>
struct AverageBackward {
  T* grad_x;
  const T* grad_out;
  PoolLayout<kChannelsLast> layout;
  Axis rows, cols;
  template <typename index_t>
  __device__ void operator()(index_t i, const index_t*) const {
    index_t n, c, ih, iw;
    layout.split(i, rows.in, cols.in, &n, &c, &ih, &iw);
    const PlaneSpan g = layout.plane(n, c, rows.out * cols.out);
    int64_t oh0, oh1, ow0, ow1;
    rows.candidates(ih, &oh0, &oh1);
    cols.candidates(iw, &ow0, &ow1);
    T sum = 0;
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      const PoolWindow r = rows.at(oh);
      if (static_cast<int64_t>(ih) < r.begin || static_cast<int64_t>(ih) >= r.end) continue;
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const PoolWindow w = cols.at(ow);
        if (static_cast<int64_t>(iw) < w.begin || static_cast<int64_t>(iw) >= w.end) continue;
        sum +=
            grad_out[g[oh * cols.out + ow]] / static_cast<T>(r.divisor_extent * w.divisor_extent);
      }
    }
    grad_x[i] = sum;
  }
};

// Calls fn(std::bool_constant<channels_last>{}) for the layout of a kernel's tensors: channels_last
// when `a` or `b` is (for a tensor with 1x1 planes, or one channel, both layouts are the same
// memory, and is_channels_last says NCHW).
template <typename Fn>
void dispatch_layout(const Tensor& a, const Tensor& b, const Fn& fn) {
  if (is_channels_last(a) || is_channels_last(b)) return fn(std::true_type{});
  fn(std::false_type{});
}

FixedAxis fixed_axis(const Pool2dParams& p, int axis, int64_t in, int64_t out) {
  return {p.kernel[axis], p.stride[axis], p.padding[axis], in, out};
}

template <typename T>
const T* data_of(const Tensor& t) {
  return static_cast<const T*>(t.data_ptr());
}

template <typename T>
T* mutable_data_of(const Tensor& t) {
  return static_cast<T*>(t.data_ptr());
}

void max_pool2d_kernel(const Tensor& out, const Tensor& indices, const Tensor& x,
                       const Pool2dParams& p) {
  const FixedAxis rows = fixed_axis(p, 0, x.size(2), out.size(2));
  const FixedAxis cols = fixed_axis(p, 1, x.size(3), out.size(3));
  OMPQ_DISPATCH_FLOATING(x.dtype(), "max_pool2d", [&] {
    dispatch_layout(x, out, [&](auto channels_last) {
      constexpr bool kChannelsLast = decltype(channels_last)::value;
      launch_contiguous(out.numel(), x.device().index,
                        MaxForward<scalar_t, kChannelsLast>{mutable_data_of<scalar_t>(out),
                                                            indices.data<int64_t>(),
                                                            data_of<scalar_t>(x),
                                                            {x.size(1)},
                                                            rows,
                                                            cols});
    });
  });
}

void max_pool2d_backward_kernel(const Tensor& grad_x, const Tensor& grad_out,
                                const Tensor& indices) {
  const int device = grad_x.device().index;
  DeviceGuard guard(device);
  OMPQ_CUDA_CHECK(cudaMemsetAsync(grad_x.data_ptr(), 0, grad_x.numel() * dtype_size(grad_x.dtype()),
                                  default_stream(device).get()));
  const int64_t in_size = grad_x.size(2) * grad_x.size(3);
  OMPQ_DISPATCH_FLOATING(grad_out.dtype(), "max_pool2d_backward", [&] {
    dispatch_layout(grad_x, grad_out, [&](auto channels_last) {
      constexpr bool kChannelsLast = decltype(channels_last)::value;
      launch_contiguous(grad_out.numel(), device,
                        MaxBackward<scalar_t, kChannelsLast>{mutable_data_of<scalar_t>(grad_x),
                                                             data_of<scalar_t>(grad_out),
                                                             data_of<int64_t>(indices),
                                                             {grad_x.size(1)},
                                                             grad_out.size(2),
                                                             grad_out.size(3),
                                                             in_size});
    });
  });
}

template <typename Axis>
void average_forward(const Tensor& out, const Tensor& x, const Axis& rows, const Axis& cols,
                     const char* op) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), op, [&] {
    dispatch_layout(x, out, [&](auto channels_last) {
      constexpr bool kChannelsLast = decltype(channels_last)::value;
      launch_contiguous(
          out.numel(), x.device().index,
          AverageForward<scalar_t, Axis, kChannelsLast>{
              mutable_data_of<scalar_t>(out), data_of<scalar_t>(x), {x.size(1)}, rows, cols});
    });
  });
}

template <typename Axis>
void average_backward(const Tensor& grad_x, const Tensor& grad_out, const Axis& rows,
                      const Axis& cols, const char* op) {
  OMPQ_DISPATCH_FLOATING(grad_out.dtype(), op, [&] {
    dispatch_layout(grad_x, grad_out, [&](auto channels_last) {
      constexpr bool kChannelsLast = decltype(channels_last)::value;
      launch_contiguous(
          grad_x.numel(), grad_x.device().index,
          AverageBackward<scalar_t, Axis, kChannelsLast>{mutable_data_of<scalar_t>(grad_x),
                                                         data_of<scalar_t>(grad_out),
                                                         {grad_x.size(1)},
                                                         rows,
                                                         cols});
    });
  });
}

void avg_pool2d_kernel(const Tensor& out, const Tensor& x, const Pool2dParams& p) {
  average_forward(out, x, fixed_axis(p, 0, x.size(2), out.size(2)),
                  fixed_axis(p, 1, x.size(3), out.size(3)), "avg_pool2d");
}

void avg_pool2d_backward_kernel(const Tensor& grad_x, const Tensor& grad_out,
                                const Pool2dParams& p) {
  average_backward(grad_x, grad_out, fixed_axis(p, 0, grad_x.size(2), grad_out.size(2)),
                   fixed_axis(p, 1, grad_x.size(3), grad_out.size(3)), "avg_pool2d_backward");
}

void adaptive_avg_pool2d_kernel(const Tensor& out, const Tensor& x) {
  average_forward(out, x, AdaptiveAxis{x.size(2), out.size(2)},
                  AdaptiveAxis{x.size(3), out.size(3)}, "adaptive_avg_pool2d");
}

void adaptive_avg_pool2d_backward_kernel(const Tensor& grad_x, const Tensor& grad_out) {
  average_backward(grad_x, grad_out, AdaptiveAxis{grad_x.size(2), grad_out.size(2)},
                   AdaptiveAxis{grad_x.size(3), grad_out.size(3)}, "adaptive_avg_pool2d_backward");
}

}  // namespace

void register_pool_kernels() {
  max_pool2d_stub.register_kernel(DeviceType::kCUDA, max_pool2d_kernel);
  max_pool2d_backward_stub.register_kernel(DeviceType::kCUDA, max_pool2d_backward_kernel);
  avg_pool2d_stub.register_kernel(DeviceType::kCUDA, avg_pool2d_kernel);
  avg_pool2d_backward_stub.register_kernel(DeviceType::kCUDA, avg_pool2d_backward_kernel);
  adaptive_avg_pool2d_stub.register_kernel(DeviceType::kCUDA, adaptive_avg_pool2d_kernel);
  adaptive_avg_pool2d_backward_stub.register_kernel(DeviceType::kCUDA,
                                                    adaptive_avg_pool2d_backward_kernel);
}

}  // namespace ompq::cuda
