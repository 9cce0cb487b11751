// The dropout mask, shared by the CPU and CUDA kernels so that both draw it bit for bit: element i
// of a draw that starts at Philox stream position `start` is dropped iff
// philox_uniform(seed, start + i) < p, and kept values are scaled by 1 / (1 - p).
#pragma once

#include <cstdint>

#include "core/philox.h"

namespace ompq {

// The factor element `index` of the stream is multiplied by: 0 or keep_scale = 1 / (1 - p).
template <typename T>
OMPQ_HD inline T dropout_factor(uint64_t seed, uint64_t index, double p, T keep_scale) {
  return static_cast<double>(philox_uniform(seed, index)) < p ? T(0) : keep_scale;
}

}  // namespace ompq
