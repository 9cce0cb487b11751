// Autograd-aware dropout.
#pragma once

#include "core/random.h"
#include "core/tensor.h"

namespace ompq {

// Inverted dropout: zeroes each element with probability p and scales the kept ones by 1 / (1 - p);
// returns x itself when !training or p == 0. p must be in [0, 1). The mask takes x.numel()
// positions of gen's Philox stream: element i (row-major) is dropped iff
// philox_uniform(seed, start + i) < p, so a CUDA kernel reproduces it bit for bit.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen = default_generator());

}  // namespace ompq
