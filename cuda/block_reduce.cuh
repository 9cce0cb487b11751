// Block-wide reductions for kernels whose threads each hold a partial result: warp shuffles, then
// one value per warp through shared memory. The order of combination depends only on blockDim, so
// results are deterministic. Blocks are one-dimensional with a multiple of 32 threads.
#pragma once

#include "cuda/runtime.h"

namespace ompq::cuda {

struct SumOp {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};

// Every thread of the block gets combine() over all threads' `value`s. `shared` holds at least
// 32 values; it may be passed to consecutive calls (the call synchronizes before reusing it).
template <typename T, typename Combine>
__device__ T block_allreduce(T value, T identity, const Combine& combine, T* shared) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const unsigned warps = blockDim.x / 32;
  for (int offset = 16; offset > 0; offset /= 2) {
    value = combine(value, __shfl_down_sync(0xffffffffu, value, offset));
  }
  __syncthreads();  // the previous call's readers are done with shared
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  if (warp == 0) {
    value = lane < warps ? shared[lane] : identity;
    for (int offset = 16; offset > 0; offset /= 2) {
      value = combine(value, __shfl_down_sync(0xffffffffu, value, offset));
    }
    if (lane == 0) shared[0] = value;
  }
  __syncthreads();
  return shared[0];
}

}  // namespace ompq::cuda
