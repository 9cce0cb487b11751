// Walking strided tensors on the CPU. Adjacent dims that are contiguous with each other in every
// operand are merged first, so that the common cases (contiguous, or contiguous but broadcast
// along an outer dim) become one long inner loop.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <numeric>
#include <vector>

#include "core/shape.h"

namespace ompq::cpu {

// Shape plus per-operand strides (in elements) after merging; at most kMaxOperands operands.
template <int N>
struct StridedLayout {
  Shape shape;
  std::array<Shape, N> strides;
};

template <int N>
StridedLayout<N> merge_dims(const Shape& shape, const std::array<Shape, N>& strides) {
  StridedLayout<N> out;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;  // size-1 dims never move a pointer
    bool merge = !out.shape.empty();
    for (int k = 0; k < N && merge; ++k) {
      merge = out.strides[k].back() == strides[k][d] * shape[d];
    }
    if (merge) {
      out.shape.back() *= shape[d];
      for (int k = 0; k < N; ++k) out.strides[k].back() = strides[k][d];
    } else {
      out.shape.push_back(shape[d]);
      for (int k = 0; k < N; ++k) out.strides[k].push_back(strides[k][d]);
    }
  }
  if (out.shape.empty()) {  // a scalar or all-ones shape: one element
    out.shape.push_back(1);
    for (int k = 0; k < N; ++k) out.strides[k].push_back(0);
  }
  return out;
}

// Reorders dims (stably) so that operand `key`'s strides do not increase from outer to inner: the
// inner loop then walks that operand's memory in order whatever its layout (e.g. channels-last),
// and merge_dims() can merge what is contiguous in memory rather than in logical order.
template <int N>
void sort_dims_by_stride(Shape& shape, std::array<Shape, N>& strides, int key) {
  std::vector<size_t> order(shape.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t i, size_t j) { return strides[key][i] > strides[key][j]; });
  Shape sorted_shape(shape.size());
  std::array<Shape, N> sorted_strides;
  for (int k = 0; k < N; ++k) sorted_strides[k].resize(shape.size());
  for (size_t i = 0; i < order.size(); ++i) {
    sorted_shape[i] = shape[order[i]];
    for (int k = 0; k < N; ++k) sorted_strides[k][i] = strides[k][order[i]];
  }
  shape = std::move(sorted_shape);
  strides = std::move(sorted_strides);
}

// Calls fn(offsets, inner_size, inner_strides) for every position of the outer dims of a merged
// layout, for linear outer positions [outer_begin, outer_end). `offsets[k]` is operand k's element
// offset of the first inner element.
template <int N, typename Fn>
void for_each_inner(const StridedLayout<N>& layout, int64_t outer_begin, int64_t outer_end,
                    const Fn& fn) {
  const int64_t ndim = static_cast<int64_t>(layout.shape.size());
  const int64_t inner = layout.shape.back();
  std::array<int64_t, N> inner_strides;
  for (int k = 0; k < N; ++k) inner_strides[k] = layout.strides[k].back();
  Shape index(ndim > 1 ? ndim - 1 : 0, 0);
  int64_t rem = outer_begin;
  for (int64_t d = ndim - 2; d >= 0; --d) {
    index[d] = rem % layout.shape[d];
    rem /= layout.shape[d];
  }
  for (int64_t pos = outer_begin; pos < outer_end; ++pos) {
    std::array<int64_t, N> offsets{};
    for (int64_t d = 0; d < ndim - 1; ++d) {
      for (int k = 0; k < N; ++k) offsets[k] += index[d] * layout.strides[k][d];
    }
    fn(offsets, inner, inner_strides);
    for (int64_t d = ndim - 2; d >= 0; --d) {
      if (++index[d] < layout.shape[d]) break;
      index[d] = 0;
    }
  }
}

template <int N>
int64_t outer_count(const StridedLayout<N>& layout) {
  int64_t n = 1;
  for (size_t d = 0; d + 1 < layout.shape.size(); ++d) n *= layout.shape[d];
  return n;
}

}  // namespace ompq::cpu
