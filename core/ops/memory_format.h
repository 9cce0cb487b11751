// The activation layout an op's kernels run in. A [N, C, H, W] activation is NCHW-contiguous or
// channels_last (NHWC in memory, see is_channels_last in core/ops/conv.h); ops whose kernels take
// both keep channels_last from input to output, so that a whole network can stay in it.
#pragma once

#include "core/device.h"
#include "core/tensor.h"

namespace ompq {

// Whether the batch-norm and pooling kernels of `device` take channels_last tensors as they are:
// the CPU ones do; the CUDA ones are NCHW-only so far and get contiguous copies.
bool kernels_take_channels_last(Device device);

// t (detached) NCHW-contiguous, or channels_last when `channels_last`; copied only when it is not
// in that layout already.
Tensor in_memory_format(const Tensor& t, bool channels_last);

}  // namespace ompq
