#include "core/ops/conv.h"

#include "core/ops/amp.h"

namespace ompq {

DispatchStub<Conv2dForwardKernel> conv2d_forward_stub("conv2d");
DispatchStub<Conv2dBackwardKernel> conv2d_backward_stub("conv2d_backward");

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

// The three backward entry points: checks, allocates the requested gradients (the input one in
// the given memory format) and runs the kernel. x must be defined when a weight gradient is
// requested, weight when the input gradient is.
Conv2dGrads conv2d_backward_impl(const char* op, const Tensor& grad_out, const Tensor& x,
                                 const Tensor& weight, const Shape& x_shape,
                                 const Shape& weight_shape, bool channels_last,
                                 std::array<bool, 3> needed, const Conv2dParams& p) {
  Shape out_shape = ops::conv2d_output_shape(x_shape, weight_shape, p);
  OMPQ_CHECK(grad_out.shape() == out_shape, op, ": grad_out of shape ", shape_str(grad_out.shape()),
             " for an output of shape ", shape_str(out_shape));
  OMPQ_CHECK(!needed[2] || needed[1], op, ": the bias gradient comes with the weight gradient");
  if (x.defined() && weight.defined()) check_same_dtype(x, weight, op);
  check_product_dtypes(op, x.defined() ? x.dtype() : weight.dtype(), grad_out.dtype());
  const DType dtype = grad_out.dtype();
  const Device device = grad_out.device();
  Conv2dGrads grads;
  if (needed[0]) grads.input = empty_nchw(x_shape, channels_last, dtype, device);
  if (needed[1]) grads.weight = Tensor::empty(weight_shape, dtype, device);
  if (needed[2]) grads.bias = Tensor::empty({weight_shape[0]}, dtype, device);
  if (grad_out.numel() == 0) {
    for (Tensor* g : {&grads.input, &grads.weight, &grads.bias}) {
      if (g->defined()) g->fill_(0.0);
    }
    return grads;
  }
  conv2d_backward_stub(device, grads, in_format(grad_out, channels_last),
                       needed[1] ? in_format(x, channels_last) : Tensor(),
                       needed[0] ? weight.detach().contiguous() : Tensor(), p);
  return grads;
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
  return conv2d(x, weight, bias, p, x.dtype());
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
              DType out_dtype) {
  Shape out_shape = conv2d_output_shape(x.shape(), weight.shape(), p);
  check_same_dtype(x, weight, "conv2d");
  check_product_dtypes("conv2d", x.dtype(), out_dtype);
  check_same_device(x, weight, "conv2d");
  if (bias.defined()) {
    OMPQ_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "conv2d: bias of shape ",
               shape_str(bias.shape()), " does not match weight of shape ",
               shape_str(weight.shape()), " (expected [", weight.size(0), "])");
    OMPQ_CHECK(bias.dtype() == out_dtype, "conv2d: bias of dtype ", dtype_name(bias.dtype()),
               " for an output of dtype ", dtype_name(out_dtype), " (the bias takes the output's)");
    check_same_device(x, bias, "conv2d");
  }
  const bool channels_last = is_channels_last(x);
  Tensor xc = in_format(x, channels_last);
  Tensor out = empty_nchw(out_shape, channels_last, out_dtype, x.device());
  if (out.numel() == 0) return out;
  conv2d_forward_stub(x.device(), out, xc, weight.detach().contiguous(),
                      bias.defined() ? bias.detach().contiguous() : Tensor(), p);
  return out;
}

Conv2dGrads conv2d_backward(const Tensor& grad_out, const Tensor& x, const Tensor& weight,
                            std::array<bool, 3> needed, const Conv2dParams& p) {
  return conv2d_backward_impl("conv2d_backward", grad_out, x, weight, x.shape(), weight.shape(),
                              is_channels_last(x), needed, p);
}

Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, const Shape& x_shape,
                             const Conv2dParams& p) {
  return conv2d_backward_impl("conv2d_backward_input", grad_out, Tensor(), weight, x_shape,
                              weight.shape(), is_channels_last(grad_out), {true, false, false}, p)
      .input;
}

Conv2dGrads conv2d_backward_weight(const Tensor& grad_out, const Tensor& x,
                                   const Shape& weight_shape, bool with_bias,
                                   const Conv2dParams& p) {
  return conv2d_backward_impl("conv2d_backward_weight", grad_out, x, Tensor(), x.shape(),
                              weight_shape, is_channels_last(x), {false, true, with_bias}, p);
}

}  // namespace ops
}  // namespace ompq
