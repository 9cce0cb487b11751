// 2-D convolution (raw: no autograd), PyTorch semantics: x [N, C, H, W], weight [O, C/groups, kh,
// kw], bias [O] or undefined, output [N, O, OH, OW] with OH = (H + 2*pad - dilation*(kh-1) -
// 1)/stride + 1. Tensors are NCHW-contiguous, or channels_last (NHWC in memory, NCHW logical
// shape); outputs and input gradients take the memory format of x. Anything else is made
// NCHW-contiguous first.
#pragma once

#include <array>
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace ompq {

struct Conv2dParams {
  std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
};

// out = conv(x, weight) + bias; bias may be undefined.
using Conv2dForwardKernel = void(const Tensor& out, const Tensor& x, const Tensor& weight,
                                 const Tensor& bias, const Conv2dParams& p);
// grad_x = gradient of the convolution w.r.t. its input (a transposed convolution of grad_out).
using Conv2dBackwardInputKernel = void(const Tensor& grad_x, const Tensor& grad_out,
                                       const Tensor& weight, const Conv2dParams& p);
// grad_weight (and grad_bias = sum of grad_out over N, OH, OW when defined).
using Conv2dBackwardWeightKernel = void(const Tensor& grad_weight, const Tensor& grad_bias,
                                        const Tensor& grad_out, const Tensor& x,
                                        const Conv2dParams& p);
extern DispatchStub<Conv2dForwardKernel> conv2d_forward_stub;
extern DispatchStub<Conv2dBackwardInputKernel> conv2d_backward_input_stub;
extern DispatchStub<Conv2dBackwardWeightKernel> conv2d_backward_weight_stub;

// True when t is [N, C, H, W] laid out as NHWC (and not also NCHW-contiguous).
bool is_channels_last(const Tensor& t);
// An uninitialized [N, C, H, W] tensor, channels_last when `channels_last`.
Tensor empty_nchw(const Shape& shape, bool channels_last, DType dtype, Device device);

namespace ops {

// Checks the arguments (naming conv2d and the shapes) and returns the output shape.
Shape conv2d_output_shape(const Shape& x, const Shape& weight, const Conv2dParams& p);

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p);
// The gradient w.r.t. x, of shape `x_shape`, in the memory format of grad_out.
Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Shape& x_shape,
                             const Conv2dParams& p);

struct Conv2dWeightGrads {
  Tensor weight;
  Tensor bias;  // undefined unless requested
};
Conv2dWeightGrads conv2d_backward_weight(const Tensor& grad_out, const Tensor& x,
                                         const Shape& weight_shape, bool with_bias,
                                         const Conv2dParams& p);

}  // namespace ops
}  // namespace ompq
