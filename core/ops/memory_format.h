// The activation layout an op's kernels run in. A [N, C, H, W] activation is NCHW-contiguous or
// channels_last (NHWC in memory, see is_channels_last in core/ops/conv.h). The conv, batch-norm and
// pooling kernels of every backend take both and keep channels_last from input to output, so that a
// whole network can stay in it.
#pragma once

#include "core/device.h"
#include "core/tensor.h"

namespace ompq {

// t (detached) NCHW-contiguous, or channels_last when `channels_last`; copied only when it is not
// in that layout already.
Tensor in_memory_format(const Tensor& t, bool channels_last);

}  // namespace ompq
