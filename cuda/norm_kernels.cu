// CUDA batch norm, forward (training and eval, optionally fused with a residual add and an
// activation) and backward, with the CPU kernel's numerics: the per-channel sums that a pass needs
// are formed from T-valued terms accumulated in double, and the per-channel and per-element
// formulas are core/ops/norm_math.h's, shared with the CPU. x (and dy, y, the residual and the
// gradients, which share its layout) is one of
//  - planar: contiguous [N, C, S] with S > 1 (NCHW);
//  - interleaved: rows of C channels, [R, C] in memory: [N, C] input (R = N) and channels_last
//    [N, C, H, W] (NHWC, R = N*H*W).
//
// Each pass is three launches:
//  1. channel sums: partial sums of the terms of each channel over splits of its values; splits
//     (gridDim.y) give the GPU enough blocks when there are few channels. Planar: block (c, split)
//     sums channel c (flat index j = n * S + s, so a warp reads consecutive addresses when
//     S >= 32). Interleaved: block (tile, split) sums 32 consecutive channels, a warp reading 32
//     neighbouring values of a row;
//  2. channel coefficients: one thread per channel combines its splits in order, forms the batch
//     statistics / gradient sums, updates the running buffers and writes the per-element affine
//     coefficients to a workspace;
//  3. apply: one thread per element; the forward's residual add and activation and the
//     activation's gradient run here (and in the backward's sums).
// Every combination order is fixed by the shapes, so results are deterministic.
#include <algorithm>
#include <limits>

#include "core/ops/conv.h"
#include "core/ops/norm.h"
#include "core/ops/norm_math.h"
#include "cuda/block_reduce.cuh"
#include "cuda/launch.cuh"
#include "cuda/launch_config.h"
#include "cuda/register.h"

namespace ompq::cuda {
namespace {

using norm_launch::kSumThreads;
using norm_launch::kTileChannels;
using norm_launch::kTileRows;

struct ChannelLayout {
  int64_t batch, channels, spatial;
  bool interleaved;

  explicit ChannelLayout(const Tensor& x)
      : batch(x.size(0)),
        channels(x.size(1)),
        spatial(batch * channels == 0 ? 0 : x.numel() / (batch * channels)),
        interleaved(spatial == 1 || is_channels_last(x)) {}
  int64_t count() const { return batch * spatial; }  // values per channel; rows when interleaved
  // Consecutive elements of one channel in memory: S planar, 1 interleaved. Element i belongs to
  // channel (i / channel_block) % C, whose first element is at c * channel_block.
  int64_t channel_block() const { return interleaved ? 1 : spatial; }
};

// Forward statistics term of channel c: d = x - shift and d^2, shift = the channel's first value.
template <typename T>
struct ShiftedTerms {
  const T* x;
  int64_t channel_block;
  struct Channel {
    const T* x;
    T shift;
    __device__ void operator()(int64_t k, T& a, T& b) const {
      a = x[k] - shift;
      b = a * a;
    }
  };
  __device__ Channel at(int64_t c) const { return {x, x[c * channel_block]}; }
};

// The gradient g = dy * activation'(y) that reaches the normalization's output (y unused, and
// undefined, for the identity).
template <NormActivation kAct, typename T>
__device__ T preactivation_grad(const T* dy, const T* y, int64_t k) {
  if constexpr (kAct == NormActivation::kIdentity) {
    return dy[k];
  } else {
    return norm_activation_grad<kAct>(dy[k], y[k]);
  }
}

// Backward term of channel c: g and g * (x - mean[c]).
template <typename T, NormActivation kAct>
struct GradTerms {
  const T* dy;
  const T* y;
  const T* x;
  const T* mean;
  struct Channel {
    const T* dy;
    const T* y;
    const T* x;
    T mean;
    __device__ void operator()(int64_t k, T& a, T& b) const {
      a = preactivation_grad<kAct>(dy, y, k);
      b = a * (x[k] - mean);
    }
  };
  __device__ Channel at(int64_t c) const { return {dy, y, x, mean[c]}; }
};

// Planar [N, C, S]: sum_a[c * splits + split], sum_b[...] = the sums of channel c's two terms over
// the values [split * chunk, (split + 1) * chunk) of the channel.
template <typename T, typename Terms, typename index_t>
__global__ void planar_sums_kernel(Terms terms, index_t channels, index_t spatial, index_t count,
                                   index_t chunk, double* sum_a, double* sum_b) {
  __shared__ double shared[32];
  const index_t begin = static_cast<index_t>(blockIdx.y) * chunk;
  const index_t end = begin + chunk < count ? begin + chunk : count;
  for (index_t c = blockIdx.x; c < channels; c += gridDim.x) {
    const auto term = terms.at(c);
    double a = 0, b = 0;
    for (index_t j = begin + threadIdx.x; j < end; j += kSumThreads) {
      const index_t n = j / spatial;
      const index_t s = j - n * spatial;
      T ta, tb;
      term((static_cast<int64_t>(n) * channels + c) * spatial + s, ta, tb);
      a += static_cast<double>(ta);
      b += static_cast<double>(tb);
    }
    a = block_allreduce(a, 0.0, SumOp(), shared);
    b = block_allreduce(b, 0.0, SumOp(), shared);
    if (threadIdx.x == 0) {
      const int64_t slot = static_cast<int64_t>(c) * gridDim.y + blockIdx.y;
      sum_a[slot] = a;
      sum_b[slot] = b;
    }
  }
}

// Interleaved [R, C]: the same partial sums over the rows [split * chunk, (split + 1) * chunk).
// Block (tile, split) of kTileChannels x kTileRows threads: thread (tx, ty) sums channel
// tile * kTileChannels + tx over the rows ty, ty + kTileRows, ... of the split; the kTileRows
// partial sums of a channel are then added in ty order.
template <typename T, typename Terms, typename index_t>
__global__ void interleaved_sums_kernel(Terms terms, index_t channels, index_t rows, index_t chunk,
                                        double* sum_a, double* sum_b) {
  __shared__ double shared_a[kTileRows][kTileChannels];
  __shared__ double shared_b[kTileRows][kTileChannels];
  const index_t c = static_cast<index_t>(blockIdx.x) * kTileChannels + threadIdx.x;
  const index_t begin = static_cast<index_t>(blockIdx.y) * chunk;
  const index_t end = begin + chunk < rows ? begin + chunk : rows;
  double a = 0, b = 0;
  if (c < channels) {
    const auto term = terms.at(c);
    for (index_t r = begin + threadIdx.y; r < end; r += kTileRows) {
      T ta, tb;
      term(static_cast<int64_t>(r) * channels + c, ta, tb);
      a += static_cast<double>(ta);
      b += static_cast<double>(tb);
    }
  }
  shared_a[threadIdx.y][threadIdx.x] = a;
  shared_b[threadIdx.y][threadIdx.x] = b;
  __syncthreads();
  if (threadIdx.y == 0 && c < channels) {
    for (int k = 1; k < kTileRows; ++k) {
      a += shared_a[k][threadIdx.x];
      b += shared_b[k][threadIdx.x];
    }
    const int64_t slot = static_cast<int64_t>(c) * gridDim.y + blockIdx.y;
    sum_a[slot] = a;
    sum_b[slot] = b;
  }
}

// The partial sums of channel c combined in split order (0 when sums were not formed).
struct ChannelSums {
  const double* a;
  const double* b;
  int splits;
  __device__ void get(int64_t c, double* sa, double* sb) const {
    *sa = 0;
    *sb = 0;
    if (a == nullptr) return;
    for (int s = 0; s < splits; ++s) {
      *sa += a[c * splits + s];
      *sb += b[c * splits + s];
    }
  }
};

// Training: batch statistics from the sums (into mean/var) and the running-buffer update (when
// running_mean is non-null). Both modes: affine[c] from mean/var, weight and bias.
template <typename T>
struct ForwardChannelArgs {
  ChannelSums sums;
  const T* x;
  const T* weight;  // null: 1
  const T* bias;    // null: 0
  T* mean;
  T* var;
  T* running_mean;  // null: no update
  T* running_var;
  BatchNormAffine<T>* affine;
  int64_t channels, channel_block;
  double count, momentum, eps;
  bool training;
};

template <typename T>
__global__ void forward_channel_kernel(ForwardChannelArgs<T> args) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < args.channels;
       c += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    if (args.training) {
      double sum, sum_sq;
      args.sums.get(c, &sum, &sum_sq);
      const T shift = args.x[c * args.channel_block];
      const BatchNormStats stats = batch_norm_stats(shift, sum, sum_sq, args.count);
      args.mean[c] = static_cast<T>(stats.mean);
      args.var[c] = static_cast<T>(stats.var);
      if (args.running_mean != nullptr) {
        args.running_mean[c] = static_cast<T>(
            batch_norm_running_update(args.running_mean[c], stats.mean, args.momentum));
        args.running_var[c] = static_cast<T>(batch_norm_running_update(
            args.running_var[c], batch_norm_unbiased_var(stats.var, args.count), args.momentum));
      }
    }
    args.affine[c] =
        batch_norm_affine<T>(args.mean[c], args.var[c], args.eps,
                             args.weight ? args.weight[c] : 1.0, args.bias ? args.bias[c] : 0.0);
  }
}

// grad_weight/grad_bias (when non-null) and the input-gradient coefficients of each channel.
template <typename T>
struct BackwardChannelArgs {
  ChannelSums sums;
  const T* weight;  // null: 1
  const T* mean;
  const T* var;
  T* grad_weight;
  T* grad_bias;
  BatchNormGradCoeffs<T>* coeffs;
  int64_t channels;
  double count, eps;
  bool training;
};

template <typename T>
__global__ void backward_channel_kernel(BackwardChannelArgs<T> args) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < args.channels;
       c += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    double sum_dy, sum_dy_xmu;
    args.sums.get(c, &sum_dy, &sum_dy_xmu);
    if (args.grad_weight != nullptr) {
      args.grad_weight[c] = static_cast<T>(sum_dy_xmu * batch_norm_invstd(args.var[c], args.eps));
    }
    if (args.grad_bias != nullptr) args.grad_bias[c] = static_cast<T>(sum_dy);
    args.coeffs[c] = batch_norm_grad_coeffs<T>(args.mean[c], args.var[c], args.eps,
                                               args.weight ? args.weight[c] : 1.0, sum_dy,
                                               sum_dy_xmu, args.count, args.training);
  }
}

// y[i] = activation(batch_norm_apply(x[i], affine[channel of i]) + residual[i]) over the
// elements in memory order (either layout).
template <typename T, NormActivation kAct>
struct ApplyAffine {
  T* y;
  const T* x;
  const T* residual;  // null: none
  const BatchNormAffine<T>* affine;
  int64_t channels, channel_block;
  template <typename index_t>
  __device__ void operator()(index_t i, const index_t*) const {
    const index_t c = (i / static_cast<index_t>(channel_block)) % static_cast<index_t>(channels);
    T v = batch_norm_apply(x[i], affine[c]);
    if (residual != nullptr) v += residual[i];
    y[i] = norm_activation<kAct>(v);
  }
};

// g = dy[i] * activation'(y[i]); grad_preactivation[i] = g and dx[i] = batch_norm_input_grad(g,
// x[i], coeffs[channel of i]), each when non-null.
template <typename T, NormActivation kAct>
struct ApplyInputGrad {
  T* dx;
  T* grad_preactivation;
  const T* dy;
  const T* y;
  const T* x;
  const BatchNormGradCoeffs<T>* coeffs;
  int64_t channels, channel_block;
  template <typename index_t>
  __device__ void operator()(index_t i, const index_t*) const {
    const T g = preactivation_grad<kAct>(dy, y, i);
    if (grad_preactivation != nullptr) grad_preactivation[i] = g;
    if (dx == nullptr) return;
    const index_t c = (i / static_cast<index_t>(channel_block)) % static_cast<index_t>(channels);
    dx[i] = batch_norm_input_grad(g, x[i], coeffs[c]);
  }
};

// The workspaces of a pass: the split partial sums and the per-channel coefficients.
struct Workspace {
  Tensor sums;          // f64 [2, C * splits]
  Tensor coefficients;  // bytes of C coefficient structs
  int splits = 0;
  double* sum_a() const { return static_cast<double*>(sums.data_ptr()); }
  double* sum_b() const { return sum_a() + sums.numel() / 2; }
  ChannelSums channel_sums() const {
    return sums.defined() ? ChannelSums{sum_a(), sum_b(), splits}
                          : ChannelSums{nullptr, nullptr, 0};
  }
};

// Launches the channel sums of `terms` into a fresh workspace.
template <typename T, typename Terms>
Workspace channel_sums(const ChannelLayout& l, const Terms& terms, Device device) {
  const int sm_count = device_properties(device.index).multiProcessorCount;
  OMPQ_CHECK(!l.interleaved || l.channels <= norm_launch::kMaxInterleavedChannels,
             "batch_norm: ", l.channels,
             " channels are more than one channels-last launch holds (at most ",
             norm_launch::kMaxInterleavedChannels, ")");
  int64_t splits = norm_launch::sum_splits(l.channels, l.count(), l.interleaved, sm_count);
  // No empty split; one (summing nothing) when the batch is empty.
  const int64_t chunk = std::max<int64_t>(1, (l.count() + splits - 1) / splits);
  splits = std::max<int64_t>(1, (l.count() + chunk - 1) / chunk);
  Workspace ws;
  ws.splits = static_cast<int>(splits);
  ws.sums = Tensor::empty({2 * l.channels * splits}, DType::kF64, device);
  const cudaStream_t stream = default_stream(device.index).get();
  const bool int32 = l.batch * l.channels * l.spatial <= std::numeric_limits<int32_t>::max();
  if (l.interleaved) {
    const dim3 grid(static_cast<unsigned>(norm_launch::sum_grid_x(l.channels, true, sm_count)),
                    static_cast<unsigned>(splits));
    const dim3 block(kTileChannels, kTileRows);
    if (int32) {
      interleaved_sums_kernel<T, Terms, uint32_t><<<grid, block, 0, stream>>>(
          terms, static_cast<uint32_t>(l.channels), static_cast<uint32_t>(l.count()),
          static_cast<uint32_t>(chunk), ws.sum_a(), ws.sum_b());
    } else {
      interleaved_sums_kernel<T, Terms, int64_t>
          <<<grid, block, 0, stream>>>(terms, l.channels, l.count(), chunk, ws.sum_a(), ws.sum_b());
    }
  } else {
    const dim3 grid(static_cast<unsigned>(norm_launch::sum_grid_x(l.channels, false, sm_count)),
                    static_cast<unsigned>(splits));
    if (int32) {
      planar_sums_kernel<T, Terms, uint32_t><<<grid, kSumThreads, 0, stream>>>(
          terms, static_cast<uint32_t>(l.channels), static_cast<uint32_t>(l.spatial),
          static_cast<uint32_t>(l.count()), static_cast<uint32_t>(chunk), ws.sum_a(), ws.sum_b());
    } else {
      planar_sums_kernel<T, Terms, int64_t><<<grid, kSumThreads, 0, stream>>>(
          terms, l.channels, l.spatial, l.count(), chunk, ws.sum_a(), ws.sum_b());
    }
  }
  OMPQ_CUDA_CHECK_LAUNCH();
  return ws;
}

template <typename T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

unsigned channel_blocks(int64_t channels) {
  return static_cast<unsigned>(norm_launch::channel_blocks(channels));
}

template <typename T, NormActivation kAct>
void forward(const Tensor& y, const Tensor& x, const Tensor& residual, const Tensor& weight,
             const Tensor& bias, const Tensor& mean, const Tensor& var, const Tensor& running_mean,
             const Tensor& running_var, bool training, double momentum, double eps) {
  const ChannelLayout l(x);
  const Device device = x.device();
  DeviceGuard guard(device.index);
  const T* xp = static_cast<const T*>(x.data_ptr());
  Workspace ws =
      training ? channel_sums<T>(l, ShiftedTerms<T>{xp, l.channel_block()}, device) : Workspace{};
  ws.coefficients =
      Tensor::empty({l.channels * int64_t{sizeof(BatchNormAffine<T>)}}, DType::kU8, device);
  auto* affine = static_cast<BatchNormAffine<T>*>(ws.coefficients.data_ptr());
  const ForwardChannelArgs<T> args{ws.channel_sums(),
                                   xp,
                                   data_or_null<const T>(weight),
                                   data_or_null<const T>(bias),
                                   static_cast<T*>(mean.data_ptr()),
                                   static_cast<T*>(var.data_ptr()),
                                   data_or_null<T>(running_mean),
                                   data_or_null<T>(running_var),
                                   affine,
                                   l.channels,
                                   l.channel_block(),
                                   static_cast<double>(l.count()),
                                   momentum,
                                   eps,
                                   training};
  forward_channel_kernel<T>
      <<<channel_blocks(l.channels), kBlockThreads, 0, default_stream(device.index).get()>>>(args);
  OMPQ_CUDA_CHECK_LAUNCH();
  launch_contiguous(
      x.numel(), device.index,
      ApplyAffine<T, kAct>{static_cast<T*>(y.data_ptr()), xp, data_or_null<const T>(residual),
                           affine, l.channels, l.channel_block()});
  // The workspaces return to the cache here; stream order keeps them alive for the kernels above.
}

template <typename T, NormActivation kAct>
void backward(const Tensor& grad_output, const Tensor& x, const Tensor& y, const Tensor& weight,
              const Tensor& mean, const Tensor& var, double eps, bool training,
              const Tensor& grad_input, const Tensor& grad_weight, const Tensor& grad_bias,
              const Tensor& grad_preactivation) {
  const ChannelLayout l(x);
  const Device device = x.device();
  DeviceGuard guard(device.index);
  const T* xp = static_cast<const T*>(x.data_ptr());
  const T* dyp = static_cast<const T*>(grad_output.data_ptr());
  const T* yp = data_or_null<const T>(y);
  const T* mean_p = static_cast<const T*>(mean.data_ptr());
  const bool need_sums = training || grad_weight.defined() || grad_bias.defined();
  Workspace ws =
      need_sums ? channel_sums<T>(l, GradTerms<T, kAct>{dyp, yp, xp, mean_p}, device) : Workspace{};
  ws.coefficients =
      Tensor::empty({l.channels * int64_t{sizeof(BatchNormGradCoeffs<T>)}}, DType::kU8, device);
  auto* coeffs = static_cast<BatchNormGradCoeffs<T>*>(ws.coefficients.data_ptr());
  const BackwardChannelArgs<T> args{ws.channel_sums(),
                                    data_or_null<const T>(weight),
                                    mean_p,
                                    static_cast<const T*>(var.data_ptr()),
                                    data_or_null<T>(grad_weight),
                                    data_or_null<T>(grad_bias),
                                    coeffs,
                                    l.channels,
                                    static_cast<double>(l.count()),
                                    eps,
                                    training};
  backward_channel_kernel<T>
      <<<channel_blocks(l.channels), kBlockThreads, 0, default_stream(device.index).get()>>>(args);
  OMPQ_CUDA_CHECK_LAUNCH();
  if (!grad_input.defined() && !grad_preactivation.defined()) return;
  launch_contiguous(
      x.numel(), device.index,
      ApplyInputGrad<T, kAct>{data_or_null<T>(grad_input), data_or_null<T>(grad_preactivation), dyp,
                              yp, xp, coeffs, l.channels, l.channel_block()});
}

void batch_norm_kernel(const Tensor& y, const Tensor& x, const Tensor& residual,
                       const Tensor& weight, const Tensor& bias, const Tensor& mean,
                       const Tensor& var, const Tensor& running_mean, const Tensor& running_var,
                       bool training, double momentum, double eps, NormActivation activation) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "batch_norm", [&] {
    with_norm_activation(activation, [&](auto act) {
      forward<scalar_t, decltype(act)::value>(y, x, residual, weight, bias, mean, var, running_mean,
                                              running_var, training, momentum, eps);
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
  batch_norm_stub.register_kernel(DeviceType::kCUDA, batch_norm_kernel);
  batch_norm_backward_stub.register_kernel(DeviceType::kCUDA, batch_norm_backward_kernel);
}

}  // namespace ompq::cuda
