#include "core/ops/conv.h"

namespace ompq {

DispatchStub<Conv2dForwardKernel> conv2d_forward_stub("conv2d");
DispatchStub<Conv2dBackwardInputKernel> conv2d_backward_input_stub("conv2d_backward_input");
DispatchStub<Conv2dBackwardWeightKernel> conv2d_backward_weight_stub("conv2d_backward_weight");

bool is_channels_last(const Tensor& t) {
  if (t.dim() != 4 || t.is_contiguous()) return false;
  const Shape& s = t.shape();
  const Shape expected = {s[1] * s[2] * s[3], 1, s[3] * s[1], s[1]};
  for (int d = 0; d < 4; ++d) {
    if (s[d] != 1 && t.strides()[d] != expected[d]) return false;
  }
  return true;
}

Tensor empty_nchw(const Shape& shape, bool channels_last, DType dtype, Device device) {
  if (!channels_last) return Tensor::empty(shape, dtype, device);
  Tensor nhwc = Tensor::empty({shape[0], shape[2], shape[3], shape[1]}, dtype, device);
  return as_strided(nhwc, shape, {shape[2] * shape[3] * shape[1], 1, shape[3] * shape[1], shape[1]},
                    0);
}

namespace {

// t (detached) in the requested memory format, copied only when it is not already.
Tensor in_format(const Tensor& t, bool channels_last) {
  Tensor d = t.detach();
  if (channels_last ? is_channels_last(d) : d.is_contiguous()) return d;
  Tensor out = empty_nchw(d.shape(), channels_last, d.dtype(), d.device());
  out.copy_(d);
  return out;
}

void check_params(const Conv2dParams& p, const char* op) {
  for (int i = 0; i < 2; ++i) {
    OMPQ_CHECK(p.stride[i] > 0, op, ": stride must be positive, got [", p.stride[0], ", ",
               p.stride[1], "]");
    OMPQ_CHECK(p.dilation[i] > 0, op, ": dilation must be positive, got [", p.dilation[0], ", ",
               p.dilation[1], "]");
    OMPQ_CHECK(p.padding[i] >= 0, op, ": padding must be non-negative, got [", p.padding[0], ", ",
               p.padding[1], "]");
  }
  OMPQ_CHECK(p.groups > 0, op, ": groups must be positive, got ", p.groups);
}

}  // namespace

namespace ops {

Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p) {
  check_params(p, "conv2d");
  OMPQ_CHECK(x.size() == 4, "conv2d: expected input of shape [N, C, H, W], got ", shape_str(x));
  OMPQ_CHECK(w.size() == 4, "conv2d: expected weight of shape [O, C/groups, kh, kw], got ",
             shape_str(w));
  OMPQ_CHECK(x[1] % p.groups == 0 && w[0] % p.groups == 0, "conv2d: groups=", p.groups,
             " must divide the input channels and the output channels (input ", shape_str(x),
             ", weight ", shape_str(w), ")");
  OMPQ_CHECK(w[1] * p.groups == x[1], "conv2d: input of shape ", shape_str(x), " has ", x[1],
             " channels but weight of shape ", shape_str(w), " with groups=", p.groups, " expects ",
             w[1] * p.groups);
  Shape out = {x[0], w[0], 0, 0};
  for (int i = 0; i < 2; ++i) {
    int64_t padded = x[2 + i] + 2 * p.padding[i];
    int64_t extent = p.dilation[i] * (w[2 + i] - 1) + 1;
    OMPQ_CHECK(w[2 + i] > 0 && extent <= padded, "conv2d: kernel of shape ", shape_str(w),
               " (dilated extent ", extent, ") is larger than the padded input (", padded,
               ") of input shape ", shape_str(x));
    out[2 + i] = (padded - extent) / p.stride[i] + 1;
  }
  return out;
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p) {
  Shape out_shape = conv2d_output_shape(x.shape(), weight.shape(), p);
  check_same_dtype(x, weight, "conv2d");
  check_same_device(x, weight, "conv2d");
  if (bias.defined()) {
    OMPQ_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "conv2d: bias of shape ",
               shape_str(bias.shape()), " does not match weight of shape ",
               shape_str(weight.shape()), " (expected [", weight.size(0), "])");
    check_same_dtype(x, bias, "conv2d");
    check_same_device(x, bias, "conv2d");
  }
  const bool channels_last = is_channels_last(x);
  Tensor xc = in_format(x, channels_last);
  Tensor out = empty_nchw(out_shape, channels_last, x.dtype(), x.device());
  if (out.numel() == 0) return out;
  conv2d_forward_stub(x.device(), out, xc, weight.detach().contiguous(),
                      bias.defined() ? bias.detach().contiguous() : Tensor(), p);
  return out;
}

Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Shape& x_shape,
                             const Conv2dParams& p) {
  Shape out_shape = conv2d_output_shape(x_shape, weight.shape(), p);
  OMPQ_CHECK(grad_out.shape() == out_shape, "conv2d_backward_input: grad_out of shape ",
             shape_str(grad_out.shape()), " for an output of shape ", shape_str(out_shape));
  check_same_dtype(grad_out, weight, "conv2d_backward_input");
  const bool channels_last = is_channels_last(grad_out);
  Tensor grad_x = empty_nchw(x_shape, channels_last, grad_out.dtype(), grad_out.device());
  if (grad_out.numel() == 0) return grad_x.fill_(0.0);
  conv2d_backward_input_stub(grad_out.device(), grad_x, in_format(grad_out, channels_last),
                             weight.detach().contiguous(), p);
  return grad_x;
}

Conv2dWeightGrads conv2d_backward_weight(const Tensor& grad_out, const Tensor& x,
                                         const Shape& weight_shape, bool with_bias,
                                         const Conv2dParams& p) {
  Shape out_shape = conv2d_output_shape(x.shape(), weight_shape, p);
  OMPQ_CHECK(grad_out.shape() == out_shape, "conv2d_backward_weight: grad_out of shape ",
             shape_str(grad_out.shape()), " for an output of shape ", shape_str(out_shape));
  check_same_dtype(grad_out, x, "conv2d_backward_weight");
  const bool channels_last = is_channels_last(x);
  Conv2dWeightGrads grads;
  grads.weight = Tensor::empty(weight_shape, x.dtype(), x.device());
  if (with_bias) grads.bias = Tensor::empty({weight_shape[0]}, x.dtype(), x.device());
  if (grad_out.numel() == 0) {
    grads.weight.fill_(0.0);
    if (with_bias) grads.bias.fill_(0.0);
    return grads;
  }
  conv2d_backward_weight_stub(x.device(), grads.weight, grads.bias,
                              in_format(grad_out, channels_last), in_format(x, channels_last), p);
  return grads;
}

}  // namespace ops
}  // namespace ompq
