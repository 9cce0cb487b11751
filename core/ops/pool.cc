#include "core/ops/pool.h"

#include "core/ops/conv.h"
#include "core/ops/memory_format.h"

namespace ompq {

DispatchStub<MaxPool2dKernel> max_pool2d_stub("max_pool2d");
DispatchStub<MaxPool2dBackwardKernel> max_pool2d_backward_stub("max_pool2d_backward");
DispatchStub<AvgPool2dKernel> avg_pool2d_stub("avg_pool2d");
DispatchStub<AvgPool2dBackwardKernel> avg_pool2d_backward_stub("avg_pool2d_backward");
DispatchStub<AdaptiveAvgPool2dKernel> adaptive_avg_pool2d_stub("adaptive_avg_pool2d");
DispatchStub<AdaptiveAvgPool2dBackwardKernel> adaptive_avg_pool2d_backward_stub(
    "adaptive_avg_pool2d_backward");

namespace {

void check_input(const Shape& x, const char* op) {
  OMPQ_CHECK(x.size() == 4, op, ": expected input of shape [N, C, H, W], got ", shape_str(x));
}

// Checks the window parameters against x (naming the op) and returns the output shape.
Shape pool_output_shape(const Shape& x, const Pool2dParams& p, const char* op) {
  check_input(x, op);
  Shape out = {x[0], x[1], 0, 0};
  for (int i = 0; i < 2; ++i) {
    OMPQ_CHECK(p.kernel[i] > 0 && p.stride[i] > 0 && p.padding[i] >= 0, op,
               ": kernel and stride must be positive and padding non-negative, got kernel [",
               p.kernel[0], ", ", p.kernel[1], "], stride [", p.stride[0], ", ", p.stride[1],
               "], padding [", p.padding[0], ", ", p.padding[1], "]");
    OMPQ_CHECK(2 * p.padding[i] <= p.kernel[i], op, ": padding [", p.padding[0], ", ", p.padding[1],
               "] must be at most half of the kernel [", p.kernel[0], ", ", p.kernel[1], "]");
    const int64_t padded = x[2 + i] + 2 * p.padding[i];
    OMPQ_CHECK(p.kernel[i] <= padded, op, ": kernel [", p.kernel[0], ", ", p.kernel[1],
               "] is larger than the padded input of input shape ", shape_str(x), " (padding [",
               p.padding[0], ", ", p.padding[1], "])");
    out[2 + i] = (padded - p.kernel[i]) / p.stride[i] + 1;
  }
  return out;
}

void check_grad_shape(const Tensor& grad_out, const Shape& expected, const char* op) {
  OMPQ_CHECK(grad_out.shape() == expected, op, ": grad_out of shape ", shape_str(grad_out.shape()),
             " for an output of shape ", shape_str(expected));
}

}  // namespace

namespace ops {

MaxPool2dResult max_pool2d(const Tensor& x, const Pool2dParams& p) {
  Shape out_shape = pool_output_shape(x.shape(), p, "max_pool2d");
  const bool channels_last = is_channels_last(x);
  MaxPool2dResult r{empty_nchw(out_shape, channels_last, x.dtype(), x.device()),
                    empty_nchw(out_shape, channels_last, DType::kI64, x.device())};
  if (r.output.numel() > 0) {
    max_pool2d_stub(x.device(), r.output, r.indices, in_memory_format(x, channels_last), p);
  }
  return r;
}

Tensor max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Shape& x_shape,
                           bool channels_last) {
  check_input(x_shape, "max_pool2d_backward");
  OMPQ_CHECK(indices.dtype() == DType::kI64 && indices.shape() == grad_out.shape(),
             "max_pool2d_backward: indices of shape ", shape_str(indices.shape()), " (",
             dtype_name(indices.dtype()), ") do not match grad_out of shape ",
             shape_str(grad_out.shape()), " (expected i64 of the same shape)");
  Tensor grad_x = empty_nchw(x_shape, channels_last, grad_out.dtype(), grad_out.device());
  if (grad_x.numel() == 0) return grad_x;
  max_pool2d_backward_stub(grad_out.device(), grad_x, in_memory_format(grad_out, channels_last),
                           in_memory_format(indices, channels_last));
  return grad_x;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p) {
  const bool channels_last = is_channels_last(x);
  Tensor out = empty_nchw(pool_output_shape(x.shape(), p, "avg_pool2d"), channels_last, x.dtype(),
                          x.device());
  if (out.numel() > 0) avg_pool2d_stub(x.device(), out, in_memory_format(x, channels_last), p);
  return out;
}

Tensor avg_pool2d_backward(const Tensor& grad_out, const Shape& x_shape, const Pool2dParams& p,
                           bool channels_last) {
  check_grad_shape(grad_out, pool_output_shape(x_shape, p, "avg_pool2d_backward"),
                   "avg_pool2d_backward");
  Tensor grad_x = empty_nchw(x_shape, channels_last, grad_out.dtype(), grad_out.device());
  if (grad_x.numel() == 0) return grad_x;
  avg_pool2d_backward_stub(grad_out.device(), grad_x, in_memory_format(grad_out, channels_last), p);
  return grad_x;
}

Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size) {
  check_input(x.shape(), "adaptive_avg_pool2d");
  OMPQ_CHECK(output_size[0] > 0 && output_size[1] > 0,
             "adaptive_avg_pool2d: output size must be positive, got [", output_size[0], ", ",
             output_size[1], "]");
  OMPQ_CHECK(x.size(2) > 0 && x.size(3) > 0, "adaptive_avg_pool2d: empty spatial dims in input ",
             "of shape ", shape_str(x.shape()));
  const bool channels_last = is_channels_last(x);
  Tensor out = empty_nchw({x.size(0), x.size(1), output_size[0], output_size[1]}, channels_last,
                          x.dtype(), x.device());
  if (out.numel() > 0) {
    adaptive_avg_pool2d_stub(x.device(), out, in_memory_format(x, channels_last));
  }
  return out;
}

Tensor adaptive_avg_pool2d_backward(const Tensor& grad_out, const Shape& x_shape,
                                    bool channels_last) {
  check_input(x_shape, "adaptive_avg_pool2d_backward");
  OMPQ_CHECK(
      grad_out.dim() == 4 && grad_out.size(0) == x_shape[0] && grad_out.size(1) == x_shape[1],
      "adaptive_avg_pool2d_backward: grad_out of shape ", shape_str(grad_out.shape()),
      " for an input of shape ", shape_str(x_shape));
  Tensor grad_x = empty_nchw(x_shape, channels_last, grad_out.dtype(), grad_out.device());
  if (grad_x.numel() == 0) return grad_x;
  adaptive_avg_pool2d_backward_stub(grad_out.device(), grad_x,
                                    in_memory_format(grad_out, channels_last));
  return grad_x;
}

}  // namespace ops
}  // namespace ompq
