// Launching grid-stride kernels over strided tensors on a device's default stream. An op is a
// functor with `template <typename index_t> __device__ void operator()(index_t i, const index_t*
// offsets) const`, called once per linear element index i with each operand's element offset.
#pragma once

#include <cstdint>

#include "cuda/launch_config.h"
#include "cuda/runtime.h"
#include "cuda/strided_indexer.h"

namespace ompq::cuda {

// Blocks for a grid-stride loop over n items on `device` (launch_config.h's grid_stride_blocks).
inline unsigned grid_blocks(int64_t n, int device) {
  return static_cast<unsigned>(
      grid_stride_blocks(n, device_properties(device).multiProcessorCount));
}

// op(i, offsets) for every linear index i < n; offsets[k] is operand k's element offset of i.
template <int N, typename index_t, typename Op>
__global__ void strided_loop_kernel(index_t n, StridedIndexer<N, index_t> indexer, Op op) {
  const index_t step = static_cast<index_t>(blockDim.x) * gridDim.x;
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    index_t offsets[N];
    indexer.offsets(i, offsets);
    op(i, offsets);
  }
}

// Runs `op` over every element of `layout` (from cpu::merge_dims over the operands) on `device`.
template <int N, typename Op>
void launch_strided(const cpu::StridedLayout<N>& layout, int device, const Op& op) {
  int64_t n = 1;
  for (int64_t s : layout.shape) n *= s;
  if (n == 0) return;
  DeviceGuard guard(device);
  const cudaStream_t stream = default_stream(device).get();
  const unsigned blocks = grid_blocks(n, device);
  if (fits_in_int32(layout)) {
    strided_loop_kernel<N, uint32_t><<<blocks, kBlockThreads, 0, stream>>>(
        static_cast<uint32_t>(n), make_indexer<N, uint32_t>(layout), op);
  } else {
    strided_loop_kernel<N, int64_t>
        <<<blocks, kBlockThreads, 0, stream>>>(n, make_indexer<N, int64_t>(layout), op);
  }
  OMPQ_CUDA_CHECK_LAUNCH();
}

// Runs `op` over the numel elements of contiguous operands: i is the element index (a flat loop,
// no index division).
template <typename Op>
void launch_contiguous(int64_t numel, int device, const Op& op) {
  launch_strided(cpu::merge_dims<1>({numel}, {Shape{1}}), device, op);
}

}  // namespace ompq::cuda
