// Reductions over dims (raw: no autograd). OWNED BY THE REDUCE WORK ITEM: extend freely, but keep
// these signatures, which core/autograd.cc uses.
#pragma once

#include <vector>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace ompq::ops {

// Sum over `dims` (empty: all dims).
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);

}  // namespace ompq::ops
