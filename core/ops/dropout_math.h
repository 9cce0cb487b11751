// The dropout mask, shared by the CPU and CUDA kernels so that both draw it bit for bit: element i
// of a draw that starts at Philox stream position `start` is dropped iff
// philox_uniform(seed, start + i) < p, and kept values are scaled by 1 / (1 - p).
#pragma once

#include <cstdint>

#include "core/philox.h"

namespace ompq {

// The factor an element whose stream draw is `uniform` is multiplied by: 0 or keep_scale = 1 / (1 -
// p).
template <typename T>
OMPQ_HD inline T dropout_factor(float uniform, double p, T keep_scale) {
  return static_cast<double>(uniform) < p ? T(0) : keep_scale;
}

// The same for stream position `index` (a kernel that draws one position per thread).
template <typename T>
OMPQ_HD inline T dropout_factor_at(uint64_t seed, uint64_t index, double p, T keep_scale) {
  return dropout_factor(philox_uniform(seed, index), p, keep_scale);
}

// Applies the mask to the elements of one Philox counter: one call yields the words of the four
// stream positions 4 * counter .. 4 * counter + 3, and those inside the draw [start, end) give
// dst[i] = src[i] * factor for i = position - start.
template <typename T>
OMPQ_HD inline void dropout_counter(T* __restrict__ dst, const T* __restrict__ src,
                                    uint64_t counter, uint64_t seed, uint64_t start, uint64_t end,
                                    double p, T keep_scale) {
  const Philox4x32 words = philox4x32(counter, seed);
  for (uint64_t lane = 0; lane < 4; ++lane) {
    const uint64_t position = counter * 4 + lane;
    if (position < start || position >= end) continue;
    const uint64_t i = position - start;
    dst[i] = src[i] * dropout_factor(philox_word_to_uniform(words.v[lane]), p, keep_scale);
  }
}

}  // namespace ompq
