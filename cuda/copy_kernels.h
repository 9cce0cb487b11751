// Same-device copy and fill kernels (cuda/copy_kernels.cu); the copy routing between host and
// devices lives in cuda/copy.cc.
#pragma once

#include "core/tensor.h"

namespace ompq::cuda {

// dst = src converted to dst's dtype, for two tensors of one shape on one CUDA device with any
// dtypes and strides (src may be broadcast: stride 0).
void launch_copy(const Tensor& dst, const Tensor& src);
// Every element of dst (any layout) = value converted to dst's dtype.
void launch_fill(const Tensor& dst, double value);

}  // namespace ompq::cuda
