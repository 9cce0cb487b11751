// Per-row reduction math shared by the CPU and CUDA reduction kernels, so that both break ties and
// treat NaN identically.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace ompq {

// Index of the largest of the n values p[0], p[stride], ...: the first one on ties, and the first
// NaN if there is one (as torch.argmax).
template <typename T>
OMPQ_HD inline int64_t argmax_along(const T* p, int64_t n, int64_t stride) {
  int64_t best = 0;
  T best_value = p[0];
  for (int64_t i = 1; i < n && best_value == best_value; ++i) {
    const T v = p[i * stride];
    if (v > best_value || v != v) {
      best = i;
      best_value = v;
    }
  }
  return best;
}

}  // namespace ompq
