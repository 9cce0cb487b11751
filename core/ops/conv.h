// 2-D convolution (raw: no autograd), PyTorch semantics: x [N, C, H, W], weight [O, C/groups, kh,
// kw], bias [O] or undefined, output [N, O, OH, OW] with OH = (H + 2*pad - dilation*(kh-1) -
// 1)/stride + 1. Tensors are NCHW-contiguous, or channels_last (NHWC in memory, NCHW logical
// shape); outputs and input gradients take the memory format of x. Anything else is made
// NCHW-contiguous first.
//
// Dtypes: x and weight share one "compute" dtype, f32, f64, bf16 or f16. The output (and the bias)
// has that dtype, or f32 for bf16/f16 operands: low-precision products accumulated in f32
// (autocast's mixed precision, core/autocast.h); the CPU returns that f32 result unrounded, cuDNN
// writes the operands' dtype which is then converted. In backward, grad_out has either dtype and
// the gradients take grad_out's (an f32 grad_out is rounded to the compute dtype for the
// products). The CPU runs bf16 natively on oneDNN; f16 is widened to f32 there (exact) and
// computed by the f32 primitives, the products an f16 tensor core would form.
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
// The gradients of a convolution; a member left undefined is not computed.
struct Conv2dGrads {
  Tensor input, weight, bias;
};
// Fills the defined members of `grads` (bias only together with weight). x is defined when
// grads.weight is, weight when grads.input is; grad_out, x and grads.input share one memory format.
using Conv2dBackwardKernel = void(const Conv2dGrads& grads, const Tensor& grad_out, const Tensor& x,
                                  const Tensor& weight, const Conv2dParams& p);
extern DispatchStub<Conv2dForwardKernel> conv2d_forward_stub;
extern DispatchStub<Conv2dBackwardKernel> conv2d_backward_stub;

// True when t is [N, C, H, W] laid out as NHWC (and not also NCHW-contiguous).
bool is_channels_last(const Tensor& t);
// An uninitialized [N, C, H, W] tensor, channels_last when `channels_last`.
Tensor empty_nchw(const Shape& shape, bool channels_last, DType dtype, Device device);

namespace ops {

// Checks the arguments (naming conv2d and the shapes) and returns the output shape.
Shape conv2d_output_shape(const Shape& x, const Shape& weight, const Conv2dParams& p);

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p);
// The same with an output (and bias) of dtype `out_dtype`: x's dtype, or f32 for bf16/f16 x.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
              DType out_dtype);
// The gradients selected by needed = {input, weight, bias} (bias needs weight) in one call: on
// oneDNN's blocked layouts grad_out is then reordered once for both primitives. The input
// gradient takes the memory format of x.
Conv2dGrads conv2d_backward(const Tensor& grad_out, const Tensor& x, const Tensor& weight,
                            std::array<bool, 3> needed, const Conv2dParams& p);
// The gradient w.r.t. x alone, of shape `x_shape`, in the memory format of grad_out.
Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Shape& x_shape,
                             const Conv2dParams& p);
// The gradients w.r.t. the weight (and the bias when `with_bias`) alone; .input stays undefined.
Conv2dGrads conv2d_backward_weight(const Tensor& grad_out, const Tensor& x,
                                   const Shape& weight_shape, bool with_bias,
                                   const Conv2dParams& p);

}  // namespace ops
}  // namespace ompq
