// Autograd-aware concatenation.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace ompq {

// Joins `tensors` along `dim` (may be negative). All must have the same number of dims, dtype and
// device, and the same sizes except along `dim`. Device-independent: copies each input into its
// slice of the output; the backward pass hands each input its slice of the gradient.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);

}  // namespace ompq
