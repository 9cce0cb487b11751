// Index math for CUDA kernels over strided tensors. A kernel walks the linear (row-major) element
// index of its output's logical shape; StridedIndexer turns that index into an element offset per
// operand. The host builds it from the operands' shape and strides after merging dims that are
// contiguous in every operand (core/cpu/strided.h), so the common cases take no division at all,
// and passes it to the kernel by value. Host-and-device code: the CPU tests check the offsets.
#pragma once

#include <array>
#include <cstdint>
#include <limits>

#include "core/cpu/strided.h"
#include "core/dtype.h"
#include "core/error.h"

// Loops over compile-time bounds are unrolled on the device (the arrays then live in registers).
#if defined(__CUDACC__)
#define OMPQ_UNROLL _Pragma("unroll")
#else
#define OMPQ_UNROLL
#endif

namespace ompq::cuda {

constexpr int kMaxDims = 8;

// index_t is uint32_t when every index and offset fits in 31 bits (integer division is several
// times cheaper in 32 bits on the GPU), int64_t otherwise.
template <int N, typename index_t>
struct StridedIndexer {
  int ndim;
  index_t sizes[kMaxDims];
  index_t strides[kMaxDims][N];

  // offsets[k] = sum over dims d of (coordinate d of `linear`) * strides[d][k]. The outermost
  // coordinate is what remains after peeling the inner ones, so a 1-d layout divides nothing.
  OMPQ_HD void offsets(index_t linear, index_t* out) const {
    OMPQ_UNROLL
    for (int k = 0; k < N; ++k) out[k] = 0;
    OMPQ_UNROLL
    for (int d = kMaxDims - 1; d > 0; --d) {
      if (d >= ndim) continue;
      const index_t quotient = linear / sizes[d];
      const index_t coordinate = linear - quotient * sizes[d];
      OMPQ_UNROLL
      for (int k = 0; k < N; ++k) out[k] += coordinate * strides[d][k];
      linear = quotient;
    }
    OMPQ_UNROLL
    for (int k = 0; k < N; ++k) out[k] += linear * strides[0][k];
  }
};

// The merged layout of N operands of one shape, walked in operand 0's memory order: consecutive
// linear indices (threads) then touch consecutive addresses of operand 0 whatever its layout
// (channels-last included). For elementwise work only: the linear index is then no longer the
// logical row-major index.
template <int N>
cpu::StridedLayout<N> memory_ordered_layout(Shape shape, std::array<Shape, N> strides) {
  cpu::sort_dims_by_stride<N>(shape, strides, 0);
  return cpu::merge_dims<N>(shape, strides);
}

// True when the linear index and every operand offset of `layout` stay below 2^31.
template <int N>
bool fits_in_int32(const cpu::StridedLayout<N>& layout) {
  constexpr int64_t kLimit = std::numeric_limits<int32_t>::max();
  int64_t numel = 1;
  for (int64_t s : layout.shape) numel *= s;
  if (numel > kLimit) return false;
  for (int k = 0; k < N; ++k) {
    int64_t max_offset = 0;
    for (size_t d = 0; d < layout.shape.size(); ++d) {
      max_offset += (layout.shape[d] - 1) * layout.strides[k][d];
    }
    if (max_offset > kLimit) return false;
  }
  return true;
}

template <int N, typename index_t>
StridedIndexer<N, index_t> make_indexer(const cpu::StridedLayout<N>& layout) {
  const int ndim = static_cast<int>(layout.shape.size());
  OMPQ_CHECK(ndim <= kMaxDims, "CUDA kernels take at most ", kMaxDims,
             " dims that cannot be merged; got a layout of ", ndim, " dims (shape ",
             shape_str(layout.shape), ")");
  StridedIndexer<N, index_t> indexer{};
  indexer.ndim = ndim;
  for (int d = 0; d < ndim; ++d) {
    indexer.sizes[d] = static_cast<index_t>(layout.shape[d]);
    for (int k = 0; k < N; ++k) indexer.strides[d][k] = static_cast<index_t>(layout.strides[k][d]);
  }
  return indexer;
}

}  // namespace ompq::cuda
