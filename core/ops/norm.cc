#include "core/ops/norm.h"

#include "core/ops/conv.h"
#include "core/ops/memory_format.h"

namespace ompq {

DispatchStub<BatchNormKernel> batch_norm_stub("batch_norm");
DispatchStub<BatchNormBackwardKernel> batch_norm_backward_stub("batch_norm_backward");

namespace ops {
namespace {

// A per-channel vector argument must be [C] with x's dtype and device; returns it contiguous.
Tensor checked_channel_vector(const Tensor& t, const char* what, const Tensor& x, const char* op) {
  if (!t.defined()) return t;
  int64_t channels = x.size(1);
  OMPQ_CHECK(t.dim() == 1 && t.size(0) == channels, op, ": ", what, " of shape ",
             shape_str(t.shape()), " does not match input of shape ", shape_str(x.shape()),
             " (expected [", channels, "])");
  check_same_dtype(t, x, op);
  check_same_device(t, x, op);
  return t.detach().contiguous();
}

// The running buffers are updated in place, so they must be the caller's own storage, contiguous.
void check_running_buffer(const Tensor& t, const char* what, const Tensor& x, const char* op) {
  checked_channel_vector(t, what, x, op);
  OMPQ_CHECK(!t.defined() || t.is_contiguous(), op, ": ", what, " must be contiguous");
}

void check_input(const Tensor& x, const char* op) {
  OMPQ_CHECK(x.dim() >= 2, op, ": input of shape ", shape_str(x.shape()),
             " must be [N, C] or [N, C, ...]");
}

}  // namespace

BatchNormResult batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                           const Tensor& running_mean, const Tensor& running_var, bool training,
                           double momentum, double eps) {
  const char* op = "batch_norm";
  check_input(x, op);
  Tensor w = checked_channel_vector(weight, "weight", x, op);
  Tensor b = checked_channel_vector(bias, "bias", x, op);
  check_running_buffer(running_mean, "running_mean", x, op);
  check_running_buffer(running_var, "running_var", x, op);
  OMPQ_CHECK(running_mean.defined() == running_var.defined(), op,
             ": running_mean and running_var must be both defined or both undefined");
  const int64_t channels = x.size(1);
  BatchNormResult result;
  if (training) {
    const int64_t per_channel = x.numel() / std::max<int64_t>(channels, 1);
    OMPQ_CHECK(per_channel > 1, op, ": expected more than 1 value per channel when training, got ",
               "input of shape ", shape_str(x.shape()));
    result.mean = Tensor::empty({channels}, x.dtype(), x.device());
    result.var = Tensor::empty({channels}, x.dtype(), x.device());
  } else {
    OMPQ_CHECK(running_mean.defined(), op,
               ": eval mode needs running_mean and running_var (got undefined buffers)");
    result.mean = running_mean.detach();
    result.var = running_var.detach();
  }
  const bool channels_last = kernels_take_channels_last(x.device()) && is_channels_last(x);
  result.output = empty_nchw(x.shape(), channels_last, x.dtype(), x.device());
  if (x.numel() == 0) return result;
  const bool update_running = training && running_mean.defined();
  batch_norm_stub(x.device(), result.output, in_memory_format(x, channels_last), w, b, result.mean,
                  result.var, update_running ? running_mean : Tensor(),
                  update_running ? running_var : Tensor(), training, momentum, eps);
  if (update_running) {
    running_mean.bump_version();
    running_var.bump_version();
  }
  return result;
}

BatchNormGrads batch_norm_backward(const Tensor& grad_output, const Tensor& x, const Tensor& weight,
                                   const Tensor& mean, const Tensor& var, double eps, bool training,
                                   std::array<bool, 3> needed) {
  const char* op = "batch_norm_backward";
  check_input(x, op);
  OMPQ_CHECK(grad_output.shape() == x.shape(), op, ": grad_output of shape ",
             shape_str(grad_output.shape()), " does not match input of shape ",
             shape_str(x.shape()));
  check_same_dtype(grad_output, x, op);
  Tensor w = checked_channel_vector(weight, "weight", x, op);
  Tensor m = checked_channel_vector(mean, "mean", x, op);
  Tensor v = checked_channel_vector(var, "var", x, op);
  const int64_t channels = x.size(1);
  // grad_output is brought to x's layout; grad_input takes it.
  const bool channels_last = kernels_take_channels_last(x.device()) && is_channels_last(x);
  BatchNormGrads grads;
  if (needed[0]) grads.input = empty_nchw(x.shape(), channels_last, x.dtype(), x.device());
  if (needed[1] && weight.defined())
    grads.weight = Tensor::empty({channels}, x.dtype(), x.device());
  if (needed[2]) grads.bias = Tensor::empty({channels}, x.dtype(), x.device());
  if (!grads.input.defined() && !grads.weight.defined() && !grads.bias.defined()) return grads;
  batch_norm_backward_stub(x.device(), in_memory_format(grad_output, channels_last),
                           in_memory_format(x, channels_last), w, m, v, eps, training, grads.input,
                           grads.weight, grads.bias);
  return grads;
}

}  // namespace ops
}  // namespace ompq
