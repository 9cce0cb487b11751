// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"), the counter-based
// generator that cuRAND and PyTorch use. Element i of a random tensor is a pure function of
// (seed, offset + i), so every device and every thread count draws the same stream.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/dtype.h"

namespace ompq {

struct Philox4x32 {
  uint32_t v[4];
};

OMPQ_HD inline void philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}

// Four 32-bit random words for the 128-bit counter (counter_lo, counter_hi, 0, 0) under `key`.
OMPQ_HD inline Philox4x32 philox4x32(uint64_t counter, uint64_t key) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, c0, &hi0, &lo0);
    philox_mulhilo(0xCD9E8D57u, c2, &hi1, &lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

// The 32-bit word for stream position `index`.
OMPQ_HD inline uint32_t philox_word(uint64_t seed, uint64_t index) {
  return philox4x32(index >> 2, seed).v[index & 3];
}

// Uniform in [0, 1) from the top 24 bits of a Philox word (exactly representable in float).
OMPQ_HD inline float philox_word_to_uniform(uint32_t word) {
  return static_cast<float>(word >> 8) * (1.0f / 16777216.0f);
}

// Uniform in [0, 1) for stream position `index`.
OMPQ_HD inline float philox_uniform(uint64_t seed, uint64_t index) {
  return philox_word_to_uniform(philox_word(seed, index));
}

// Standard normal by Box-Muller on the uniform pair at positions 2*index and 2*index+1.
OMPQ_HD inline float philox_normal(uint64_t seed, uint64_t index) {
  float u1 = philox_uniform(seed, 2 * index);
  float u2 = philox_uniform(seed, 2 * index + 1);
  float r = sqrtf(-2.0f * logf(1.0f - u1));  // 1-u1 in (0, 1]: log is finite
  return r * cosf(6.28318530717958647692f * u2);
}

// What a draw `r` becomes in a tensor: scale * r + shift, rounded once. Both the CPU and the CUDA
// kernel call this. It is an explicit fused multiply-add because a separate multiply and add is
// contracted at each compiler's discretion (GCC with -march=x86-64-v3 fuses, nvcc fuses unless
// told otherwise), and the two devices would then round inexact scales differently.
OMPQ_HD inline double random_affine(double scale, float r, double shift) {
  return fma(scale, static_cast<double>(r), shift);
}

}  // namespace ompq
