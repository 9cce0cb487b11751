// 2-D pooling (raw: no autograd) with PyTorch semantics (floor-mode output sizes, zero padding
// ignored by max, counted by average: count_include_pad=true). Inputs are [N, C, H, W]. The
// tensors a kernel gets are all NCHW-contiguous or all channels_last (NHWC in memory,
// core/ops/memory_format.h); a forward output takes the layout of x, and an input gradient the
// layout x had (the backward ops' `channels_last`). Dtypes: f32 and f64; the CPU's forward passes
// also take bf16/f16 (compared and summed in f32, the output rounded once).
#pragma once

#include <array>
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace ompq {

struct Pool2dParams {
  std::array<int64_t, 2> kernel{2, 2}, stride{2, 2}, padding{0, 0};
};

// out = window maxima; indices (i64) = h * W + w of each maximum within its input plane
// (the first one on ties; a NaN wins).
using MaxPool2dKernel = void(const Tensor& out, const Tensor& indices, const Tensor& x,
                             const Pool2dParams& p);
// grad_x[plane][indices[o]] += grad_out[o]. (A kernel tells the layout from the strides: for a
// tensor with 1x1 planes both layouts are the same memory.)
using MaxPool2dBackwardKernel = void(const Tensor& grad_x, const Tensor& grad_out,
                                     const Tensor& indices);
using AvgPool2dKernel = void(const Tensor& out, const Tensor& x, const Pool2dParams& p);
using AvgPool2dBackwardKernel = void(const Tensor& grad_x, const Tensor& grad_out,
                                     const Pool2dParams& p);
// Output size comes from out's shape; bins as in pool_math.h.
using AdaptiveAvgPool2dKernel = void(const Tensor& out, const Tensor& x);
using AdaptiveAvgPool2dBackwardKernel = void(const Tensor& grad_x, const Tensor& grad_out);
extern DispatchStub<MaxPool2dKernel> max_pool2d_stub;
extern DispatchStub<MaxPool2dBackwardKernel> max_pool2d_backward_stub;
extern DispatchStub<AvgPool2dKernel> avg_pool2d_stub;
extern DispatchStub<AvgPool2dBackwardKernel> avg_pool2d_backward_stub;
extern DispatchStub<AdaptiveAvgPool2dKernel> adaptive_avg_pool2d_stub;
extern DispatchStub<AdaptiveAvgPool2dBackwardKernel> adaptive_avg_pool2d_backward_stub;

namespace ops {

struct MaxPool2dResult {
  Tensor output;
  Tensor indices;  // i64, same shape as output
};
// Forward outputs (and max indices) are channels_last when x is and the device's kernels take it.
// The backward ops return grad_x channels_last when `channels_last` (x's layout in the forward
// pass; the functional API passes it) and the device's kernels take it, else NCHW-contiguous;
// grad_out and indices may come in either layout.
MaxPool2dResult max_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Shape& x_shape,
                           bool channels_last = false);

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d_backward(const Tensor& grad_out, const Shape& x_shape, const Pool2dParams& p,
                           bool channels_last = false);

Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);
Tensor adaptive_avg_pool2d_backward(const Tensor& grad_out, const Shape& x_shape,
                                    bool channels_last = false);

}  // namespace ops
}  // namespace ompq
