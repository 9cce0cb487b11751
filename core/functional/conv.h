// Autograd-aware 2-D convolution.
#pragma once

#include "core/ops/conv.h"
#include "core/tensor.h"

namespace ompq {

// x [N, C, H, W], weight [O, C/groups, kh, kw], bias [O] or undefined; PyTorch's conv2d
// (floor-mode output size, symmetric zero padding). Gradients flow to x, weight and bias.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              const Conv2dParams& p = {});

}  // namespace ompq
