// CUDA quantization kernels with the CPU kernels' semantics; the per-element math is
// core/ops/quant_math.h, the functions the CPU kernels call.
//
// Layout: every tensor is a contiguous [outer, C, inner] array (C = 1 per tensor); element i
// belongs to channel (i / inner) % C. Elementwise ops are one grid-stride loop over the elements.
// Per-channel sums (the scale gradient of fake quantization, the candidates' errors of the range
// search) accumulate in double: block (row, split) sums its chunk of one row's outer * inner
// elements by a shared-memory tree into a [rows, splits] workspace, and a second kernel adds the
// splits in order. The order of every addition is fixed by the shapes, so results are
// deterministic (they differ from the CPU's, which adds in other chunks, by double rounding only).
#include <algorithm>

#include "core/code_dtype.h"
#include "core/ops/quant.h"
#include "core/ops/quant_math.h"
#include "cuda/channel_loop.cuh"
#include "cuda/launch_config.h"
#include "cuda/register.h"

namespace ompq::cuda {
namespace {

using quant_launch::kSumThreads;

// partial[row, split] = sum of op(row, element) over split's chunk of row's elements, where row =
// candidate * C + channel and the elements of channel c are the outer * inner elements
// (j / inner) * C * inner + c * inner + j % inner, j < outer * inner.
template <typename Op>
__global__ void channel_sum_kernel(ChannelLayout layout, int64_t chunk, double* partial, Op op) {
  __shared__ double shared[kSumThreads];
  const int64_t row = blockIdx.x;
  const int64_t c = row % layout.channels;
  const int64_t per_channel = layout.outer * layout.inner;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * chunk;
  const int64_t end = begin + chunk < per_channel ? begin + chunk : per_channel;
  double sum = 0;
  for (int64_t j = begin + threadIdx.x; j < end; j += kSumThreads) {
    const int64_t element =
        (j / layout.inner) * layout.channels * layout.inner + c * layout.inner + j % layout.inner;
    sum += op(row, element);
  }
  shared[threadIdx.x] = sum;
  __syncthreads();
  for (int width = kSumThreads / 2; width > 0; width /= 2) {
    if (static_cast<int>(threadIdx.x) < width) shared[threadIdx.x] += shared[threadIdx.x + width];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[row * gridDim.y + blockIdx.y] = shared[0];
}

// out[row] = partial[row, 0] + ... + partial[row, splits - 1], in split order, as T.
template <typename T>
__global__ void combine_splits_kernel(const double* partial, int64_t rows, int splits, T* out) {
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; row < rows;
       row += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    double sum = 0;
    for (int s = 0; s < splits; ++s) sum += partial[row * splits + s];
    out[row] = static_cast<T>(sum);
  }
}

// out[row] (T) = the double sum of op(row, element) over channel row % C's elements, for rows
// candidates * C rows. Splits each row so that the blocks fill the GPU a few times over.
template <typename T, typename Op>
void channel_sums(T* out, int64_t rows, const ChannelLayout& layout, Device device, const Op& op) {
  const int64_t per_channel = layout.outer * layout.inner;
  OMPQ_CHECK(rows <= kMaxGridX, "per-channel sums: ", rows,
             " rows (candidates x channels) are more than one launch holds (at most ", kMaxGridX,
             ")");
  const int splits = static_cast<int>(quant_launch::sum_splits(
      rows, per_channel, device_properties(device.index).multiProcessorCount));
  const int64_t chunk = (per_channel + splits - 1) / splits;
  const Tensor partial = Tensor::empty({rows * splits}, DType::kF64, device);
  double* partial_data = static_cast<double*>(partial.data_ptr());
  DeviceGuard guard(device.index);
  const cudaStream_t stream = default_stream(device.index).get();
  channel_sum_kernel<<<dim3(static_cast<unsigned>(rows), static_cast<unsigned>(splits)),
                       kSumThreads, 0, stream>>>(layout, chunk, partial_data, op);
  OMPQ_CUDA_CHECK_LAUNCH();
  combine_splits_kernel<T><<<grid_blocks(rows, device.index), kBlockThreads, 0, stream>>>(
      partial_data, rows, splits, out);
  OMPQ_CUDA_CHECK_LAUNCH();
}

// Per-channel scale and zero point (0 when symmetric) of channel c.
template <typename T>
struct ChannelParams {
  const T* scale;
  const T* zero_point;  // null: 0
  __device__ T s(int64_t c) const { return scale[c]; }
  __device__ T z(int64_t c) const { return zero_point != nullptr ? zero_point[c] : T(0); }
};

template <typename T>
ChannelParams<T> channel_params(const Tensor& scale, const Tensor& zero_point) {
  return {static_cast<const T*>(scale.data_ptr()), data_or_null<T>(zero_point)};
}

template <typename T>
struct FakeQuantOp {
  T* out;
  const T* x;
  ChannelParams<T> params;
  T qmin, qmax;
  __device__ void operator()(int64_t i, int64_t c) const {
    out[i] = fake_quantize_value(x[i], params.s(c), params.z(c), qmin, qmax);
  }
};

template <typename T, typename Code>
struct QuantizeOp {
  Code* codes;
  const T* x;
  ChannelParams<T> params;
  T qmin, qmax;
  __device__ void operator()(int64_t i, int64_t c) const {
    codes[i] = static_cast<Code>(quantize_value(x[i], params.s(c), params.z(c), qmin, qmax));
  }
};

template <typename T, typename Code>
struct DequantizeOp {
  T* out;
  const Code* codes;
  ChannelParams<T> params;
  const T* bias;  // null: none
  __device__ void operator()(int64_t i, int64_t c) const {
    out[i] = dequantize_value(static_cast<T>(codes[i]), params.s(c), params.z(c)) +
             (bias != nullptr ? bias[c] : T(0));
  }
};

template <typename Code>
struct RequantizeOp {
  Code* codes;
  const int32_t* acc;
  const float* multiplier;
  const float* offset;  // null: 0
  float zero_point, qmin, qmax;
  __device__ void operator()(int64_t i, int64_t c) const {
    codes[i] = static_cast<Code>(requantize_value(
        acc[i], multiplier[c], offset != nullptr ? offset[c] : 0.0f, zero_point, qmin, qmax));
  }
};

// The straight-through input gradient per element (grad_input, when not null) and the scale
// gradient as the summed value (row = channel).
template <typename T>
struct FakeQuantBackwardOp {
  T* grad_input;  // null: not requested
  const T* grad_output;
  const T* x;
  ChannelParams<T> params;
  T qmin, qmax;
  bool clip;
  __device__ FakeQuantElementGrads<T> grads(int64_t i, int64_t c) const {
    return fake_quantize_grads(grad_output[i], x[i], params.s(c), params.z(c), qmin, qmax, clip);
  }
  __device__ void operator()(int64_t i, int64_t c) const { grad_input[i] = grads(i, c).input; }
};

// Writes the input gradient while summing the scale gradient (each element is visited once).
template <typename T>
struct FakeQuantScaleGradSum {
  FakeQuantBackwardOp<T> op;
  __device__ double operator()(int64_t row, int64_t i) const {
    const FakeQuantElementGrads<T> g = op.grads(i, row);
    if (op.grad_input != nullptr) op.grad_input[i] = g.input;
    return static_cast<double>(g.scale);
  }
};

// |x - fake_quantize(x)|^p of candidate row / C's scale and zero point for channel row % C.
template <typename T>
struct FakeQuantErrorSum {
  const T* x;
  const T* scales;       // [K, C]
  const T* zero_points;  // [K, C] or null
  T qmin, qmax, p;
  __device__ double operator()(int64_t row, int64_t i) const {
    const T z = zero_points != nullptr ? zero_points[row] : T(0);
    return static_cast<double>(fake_quantize_lp_error(x[i], scales[row], z, qmin, qmax, p));
  }
};

void fake_quantize_kernel(const Tensor& out, const Tensor& x, const Tensor& scale,
                          const Tensor& zero_point, const ChannelLayout& layout, QuantRange range) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "fake_quantize", [&] {
    launch_per_element(layout, x.device().index,
                       FakeQuantOp<scalar_t>{static_cast<scalar_t*>(out.data_ptr()),
                                             static_cast<const scalar_t*>(x.data_ptr()),
                                             channel_params<scalar_t>(scale, zero_point),
                                             static_cast<scalar_t>(range.qmin),
                                             static_cast<scalar_t>(range.qmax)});
  });
}

void fake_quantize_backward_kernel(const Tensor& grad_input, const Tensor& grad_scale,
                                   const Tensor& grad_output, const Tensor& x, const Tensor& scale,
                                   const Tensor& zero_point, const ChannelLayout& layout,
                                   QuantRange range, bool clip) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "fake_quantize_backward", [&] {
    const FakeQuantBackwardOp<scalar_t> op{
        grad_input.defined() ? static_cast<scalar_t*>(grad_input.data_ptr()) : nullptr,
        static_cast<const scalar_t*>(grad_output.data_ptr()),
        static_cast<const scalar_t*>(x.data_ptr()),
        channel_params<scalar_t>(scale, zero_point),
        static_cast<scalar_t>(range.qmin),
        static_cast<scalar_t>(range.qmax),
        clip};
    if (grad_scale.defined()) {
      channel_sums(static_cast<scalar_t*>(grad_scale.data_ptr()), layout.channels, layout,
                   x.device(), FakeQuantScaleGradSum<scalar_t>{op});
    } else {
      launch_per_element(layout, x.device().index, op);
    }
  });
}

void fake_quantize_error_kernel(const Tensor& errors, const Tensor& x, const Tensor& scales,
                                const Tensor& zero_points, const ChannelLayout& layout,
                                QuantRange range, double p) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "fake_quantize_error", [&] {
    channel_sums(static_cast<double*>(errors.data_ptr()), scales.size(0) * layout.channels, layout,
                 x.device(),
                 FakeQuantErrorSum<scalar_t>{
                     static_cast<const scalar_t*>(x.data_ptr()),
                     static_cast<const scalar_t*>(scales.data_ptr()),
                     data_or_null<scalar_t>(zero_points), static_cast<scalar_t>(range.qmin),
                     static_cast<scalar_t>(range.qmax), static_cast<scalar_t>(p)});
  });
}

void quantize_kernel(const Tensor& codes, const Tensor& x, const Tensor& scale,
                     const Tensor& zero_point, const ChannelLayout& layout, QuantRange range) {
  OMPQ_DISPATCH_FLOATING(x.dtype(), "quantize", [&] {
    dispatch_code_dtype(codes.dtype(), "quantize", [&](auto code) {
      using Code = decltype(code);
      launch_per_element(layout, x.device().index,
                         QuantizeOp<scalar_t, Code>{static_cast<Code*>(codes.data_ptr()),
                                                    static_cast<const scalar_t*>(x.data_ptr()),
                                                    channel_params<scalar_t>(scale, zero_point),
                                                    static_cast<scalar_t>(range.qmin),
                                                    static_cast<scalar_t>(range.qmax)});
    });
  });
}

void dequantize_kernel(const Tensor& out, const Tensor& codes, const Tensor& scale,
                       const Tensor& zero_point, const Tensor& bias, const ChannelLayout& layout) {
  OMPQ_DISPATCH_FLOATING(out.dtype(), "dequantize", [&] {
    dispatch_code_dtype(codes.dtype(), "dequantize", [&](auto code) {
      using Code = decltype(code);
      launch_per_element(layout, out.device().index,
                         DequantizeOp<scalar_t, Code>{static_cast<scalar_t*>(out.data_ptr()),
                                                      static_cast<const Code*>(codes.data_ptr()),
                                                      channel_params<scalar_t>(scale, zero_point),
                                                      data_or_null<scalar_t>(bias)});
    });
  });
}

void requantize_kernel(const Tensor& codes, const Tensor& acc, const Tensor& multiplier,
                       const Tensor& offset, int64_t zero_point, const ChannelLayout& layout,
                       QuantRange range) {
  dispatch_code_dtype(codes.dtype(), "requantize", [&](auto code) {
    using Code = decltype(code);
    launch_per_element(
        layout, acc.device().index,
        RequantizeOp<Code>{static_cast<Code*>(codes.data_ptr()),
                           static_cast<const int32_t*>(acc.data_ptr()),
                           static_cast<const float*>(multiplier.data_ptr()),
                           data_or_null<float>(offset), static_cast<float>(zero_point),
                           static_cast<float>(range.qmin), static_cast<float>(range.qmax)});
  });
}

}  // namespace

void register_quant_kernels() {
  fake_quantize_stub.register_kernel(DeviceType::kCUDA, fake_quantize_kernel);
  fake_quantize_error_stub.register_kernel(DeviceType::kCUDA, fake_quantize_error_kernel);
  fake_quantize_backward_stub.register_kernel(DeviceType::kCUDA, fake_quantize_backward_kernel);
  quantize_stub.register_kernel(DeviceType::kCUDA, quantize_kernel);
  dequantize_stub.register_kernel(DeviceType::kCUDA, dequantize_kernel);
  requantize_stub.register_kernel(DeviceType::kCUDA, requantize_kernel);
}

}  // namespace ompq::cuda
