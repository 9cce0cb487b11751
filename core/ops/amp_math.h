// Per-element math of mixed-precision training, shared by the CPU and CUDA kernels.
#pragma once

#include "core/dtype.h"

namespace ompq {

// False for inf and NaN: v - v is 0 for every finite v and NaN otherwise. (No isfinite: one
// expression that vectorizes on the CPU and compiles unchanged for the GPU.)
template <typename T>
OMPQ_HD inline bool is_finite_value(T v) {
  return v - v == T(0);
}

}  // namespace ompq
