// CUDA AdaRound kernels with the CPU kernels' semantics; the per-element math is
// core/ops/adaround_math.h, the functions the CPU kernels call.
//
// Layout: w, alpha and their gradients are contiguous [outer, C, inner] arrays (C = 1 per tensor);
// element i belongs to channel (i / inner) % C. Elementwise kernels are one grid-stride loop. The
// regularizer sums its terms in double: each block reduces its grid-stride share into one partial
// sum (cuda/block_reduce.cuh), and one block adds the partial sums; the grid depends only on the
// size and the device, so the result is deterministic (it differs from the CPU's, which adds in
// other chunks, by double rounding only).
#include "core/ops/adaround.h"
#include "core/ops/adaround_math.h"
#include "cuda/block_reduce.cuh"
#include "cuda/channel_loop.cuh"
#include "cuda/register.h"

namespace ompq::cuda {
namespace {

// Per-channel grid: scale and zero point (0 when symmetric) of channel c, and the code range.
template <typename T>
struct Grid {
  const T* scale;
  const T* zero_point;  // null: 0
  T qmin, qmax;
  __device__ T s(int64_t c) const { return scale[c]; }
  __device__ T z(int64_t c) const { return zero_point != nullptr ? zero_point[c] : T(0); }
};

template <typename T>
Grid<T> grid_of(const Tensor& scale, const Tensor& zero_point, QuantRange range) {
  return {static_cast<const T*>(scale.data_ptr()), data_or_null<T>(zero_point),
          static_cast<T>(range.qmin), static_cast<T>(range.qmax)};
}

// alpha[i] = adaround_init_alpha(w[i], scale[c]).
template <typename T>
struct InitOp {
  T* alpha;
  const T* w;
  const T* scale;
  __device__ void operator()(int64_t i, int64_t c) const {
    alpha[i] = adaround_init_alpha(w[i], scale[c]);
  }
};

// out[i] = w[i] rounded by h(alpha[i]) (soft) or [alpha[i] >= 0] (hard) onto channel c's grid.
template <typename T>
struct QuantizeOp {
  T* out;
  const T* w;
  const T* alpha;
  Grid<T> grid;
  bool hard;
  __device__ void operator()(int64_t i, int64_t c) const {
    const T h = hard ? adaround_hard_h(alpha[i]) : rectified_sigmoid(alpha[i]);
    out[i] = adaround_weight_value(w[i], h, grid.s(c), grid.z(c), grid.qmin, grid.qmax);
  }
};

// grad_alpha[i] = d(soft weight)/d alpha * grad_output[i].
template <typename T>
struct QuantizeBackwardOp {
  T* grad_alpha;
  const T* grad_output;
  const T* w;
  const T* alpha;
  Grid<T> grid;
  __device__ void operator()(int64_t i, int64_t c) const {
    grad_alpha[i] = adaround_weight_grad(grad_output[i], w[i], alpha[i], grid.s(c), grid.z(c),
                                         grid.qmin, grid.qmax);
  }
};

// grad_alpha[i] = *grad * d term / d alpha (grad: the 0-dim output gradient, on the device).
template <typename T>
struct RegularizerBackwardOp {
  T* grad_alpha;
  const T* grad;
  const T* alpha;
  T beta;
  __device__ void operator()(int64_t i, int64_t) const {
    grad_alpha[i] = *grad * adaround_regularizer_grad(alpha[i], beta);
  }
};

// partial[block] = the double sum of the regularizer terms of the block's grid-stride share.
template <typename T>
__global__ void regularizer_partial_kernel(const T* alpha, int64_t n, T beta, double* partial) {
  __shared__ double shared[32];
  double sum = 0;
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    sum += static_cast<double>(adaround_regularizer_term(alpha[i], beta));
  }
  sum = block_allreduce(sum, 0.0, SumOp{}, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = sum;
}

// *out (T) = the sum of partial[0, count), by one block.
template <typename T>
__global__ void sum_partials_kernel(const double* partial, int64_t count, T* out) {
  __shared__ double shared[32];
  double sum = 0;
  for (int64_t k = threadIdx.x; k < count; k += blockDim.x) sum += partial[k];
  sum = block_allreduce(sum, 0.0, SumOp{}, shared);
  if (threadIdx.x == 0) *out = static_cast<T>(sum);
}

void init_kernel(const Tensor& alpha, const Tensor& w, const Tensor& scale,
                 const ChannelLayout& layout) {
  OMPQ_DISPATCH_FLOATING(w.dtype(), "adaround_init", [&] {
    launch_per_element(layout, w.device().index,
                       InitOp<scalar_t>{static_cast<scalar_t*>(alpha.data_ptr()),
                                        static_cast<const scalar_t*>(w.data_ptr()),
                                        static_cast<const scalar_t*>(scale.data_ptr())});
  });
}

void quantize_kernel(const Tensor& out, const Tensor& w, const Tensor& alpha, const Tensor& scale,
                     const Tensor& zero_point, const ChannelLayout& layout, QuantRange range,
                     bool hard) {
  OMPQ_DISPATCH_FLOATING(w.dtype(), "adaround_quantize", [&] {
    launch_per_element(layout, w.device().index,
                       QuantizeOp<scalar_t>{static_cast<scalar_t*>(out.data_ptr()),
                                            static_cast<const scalar_t*>(w.data_ptr()),
                                            static_cast<const scalar_t*>(alpha.data_ptr()),
                                            grid_of<scalar_t>(scale, zero_point, range), hard});
  });
}

void quantize_backward_kernel(const Tensor& grad_alpha, const Tensor& grad_output, const Tensor& w,
                              const Tensor& alpha, const Tensor& scale, const Tensor& zero_point,
                              const ChannelLayout& layout, QuantRange range) {
  OMPQ_DISPATCH_FLOATING(w.dtype(), "adaround_quantize_backward", [&] {
    launch_per_element(
        layout, w.device().index,
        QuantizeBackwardOp<scalar_t>{static_cast<scalar_t*>(grad_alpha.data_ptr()),
                                     static_cast<const scalar_t*>(grad_output.data_ptr()),
                                     static_cast<const scalar_t*>(w.data_ptr()),
                                     static_cast<const scalar_t*>(alpha.data_ptr()),
                                     grid_of<scalar_t>(scale, zero_point, range)});
  });
}

void regularizer_kernel(const Tensor& out, const Tensor& alpha, double beta) {
  const int device = alpha.device().index;
  const int64_t n = alpha.numel();
  const unsigned blocks = grid_blocks(n, device);
  const Tensor partial = Tensor::empty({int64_t{blocks}}, DType::kF64, alpha.device());
  double* partial_data = static_cast<double*>(partial.data_ptr());
  DeviceGuard guard(device);
  const cudaStream_t stream = default_stream(device).get();
  OMPQ_DISPATCH_FLOATING(alpha.dtype(), "adaround_regularizer", [&] {
    regularizer_partial_kernel<scalar_t>
        <<<blocks, kBlockThreads, 0, stream>>>(static_cast<const scalar_t*>(alpha.data_ptr()), n,
                                               static_cast<scalar_t>(beta), partial_data);
    OMPQ_CUDA_CHECK_LAUNCH();
    sum_partials_kernel<scalar_t><<<1, kBlockThreads, 0, stream>>>(
        partial_data, blocks, static_cast<scalar_t*>(out.data_ptr()));
    OMPQ_CUDA_CHECK_LAUNCH();
  });
}

void regularizer_backward_kernel(const Tensor& grad_alpha, const Tensor& grad, const Tensor& alpha,
                                 double beta) {
  const ChannelLayout flat{1, 1, alpha.numel()};
  OMPQ_DISPATCH_FLOATING(alpha.dtype(), "adaround_regularizer_backward", [&] {
    launch_per_element(
        flat, alpha.device().index,
        RegularizerBackwardOp<scalar_t>{static_cast<scalar_t*>(grad_alpha.data_ptr()),
                                        static_cast<const scalar_t*>(grad.data_ptr()),
                                        static_cast<const scalar_t*>(alpha.data_ptr()),
                                        static_cast<scalar_t>(beta)});
  });
}

}  // namespace

void register_adaround_kernels() {
  adaround_init_stub.register_kernel(DeviceType::kCUDA, init_kernel);
  adaround_quantize_stub.register_kernel(DeviceType::kCUDA, quantize_kernel);
  adaround_quantize_backward_stub.register_kernel(DeviceType::kCUDA, quantize_backward_kernel);
  adaround_regularizer_stub.register_kernel(DeviceType::kCUDA, regularizer_kernel);
  adaround_regularizer_backward_stub.register_kernel(DeviceType::kCUDA,
                                                     regularizer_backward_kernel);
}

}  // namespace ompq::cuda
