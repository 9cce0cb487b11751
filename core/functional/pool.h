// Autograd-aware 2-D pooling (PyTorch semantics: floor-mode sizes; average pooling counts the
// zero padding, count_include_pad=true).
#pragma once

#include <array>

#include "core/ops/pool.h"
#include "core/tensor.h"

namespace ompq {

Tensor max_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p);
// Bins [floor(i*H/oh), ceil((i+1)*H/oh)) along each axis.
Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);

}  // namespace ompq
