// Elementwise loops over a contiguous [outer, C, inner] array (core/ops/quant.h's ChannelLayout;
// C = 1 per tensor), for the kernels whose per-element parameters are per channel (quantization,
// AdaRound). An op is a functor with `__device__ void operator()(int64_t i, int64_t c) const`,
// called once per element i with its channel c = (i / inner) % C.
#pragma once

#include <cstdint>

#include "core/ops/quant.h"
#include "cuda/launch.cuh"

namespace ompq::cuda {

template <typename T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr;
}

// The channel of element i of a contiguous [outer, channels, inner] array.
__device__ __forceinline__ int64_t channel_of(int64_t i, const ChannelLayout& layout) {
  return (i / layout.inner) % layout.channels;
}

// op(i, channel) for every element i < n of `layout`.
template <typename Op>
__global__ void per_element_kernel(int64_t n, ChannelLayout layout, Op op) {
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    op(i, channel_of(i, layout));
  }
}

// Runs `op` over every element of `layout` on `device`'s default stream.
template <typename Op>
void launch_per_element(const ChannelLayout& layout, int device, const Op& op) {
  const int64_t n = layout.outer * layout.channels * layout.inner;
  DeviceGuard guard(device);
  per_element_kernel<<<grid_blocks(n, device), kBlockThreads, 0, default_stream(device).get()>>>(
      n, layout, op);
  OMPQ_CUDA_CHECK_LAUNCH();
}

}  // namespace ompq::cuda
