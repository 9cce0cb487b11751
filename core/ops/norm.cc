#include "core/ops/norm.h"

#include "core/ops/amp.h"
#include "core/ops/conv.h"
#include "core/ops/memory_format.h"

namespace ompq {

DispatchStub<BatchNormKernel> batch_norm_stub("batch_norm");
DispatchStub<BatchNormBackwardKernel> batch_norm_backward_stub("batch_norm_backward");

namespace ops {
namespace {

// The dtype of the per-channel vectors (weight, bias, statistics) for an input x: x's own, or f32
// for bf16/f16 activations, whose normalization runs in f32.
DType channel_dtype(const Tensor& x) {
  return x.dtype() == DType::kBF16 || x.dtype() == DType::kF16 ? DType::kF32 : x.dtype();
}

// A per-channel vector argument must be [C] with channel_dtype(x) and x's device; returns it
// contiguous.
Tensor checked_channel_vector(const Tensor& t, const char* what, const Tensor& x, const char* op) {
  if (!t.defined()) return t;
  int64_t channels = x.size(1);
  OMPQ_CHECK(t.dim() == 1 && t.size(0) == channels, op, ": ", what, " of shape ",
             shape_str(t.shape()), " does not match input of shape ", shape_str(x.shape()),
             " (expected [", channels, "])");
  OMPQ_CHECK(t.dtype() == channel_dtype(x), op, ": ", what, " of dtype ", dtype_name(t.dtype()),
             " for an input of dtype ", dtype_name(x.dtype()), " (expected ",
             dtype_name(channel_dtype(x)), ")");
  check_same_device(t, x, op);
  return t.detach().contiguous();
}

// The running buffers are updated in place, so they must be the caller's own storage, contiguous.
void check_running_buffer(const Tensor& t, const char* what, const Tensor& x, const char* op) {
  checked_channel_vector(t, what, x, op);
  OMPQ_CHECK(!t.defined() || t.is_contiguous(), op, ": ", what, " must be contiguous");
}

// A tensor that goes element for element with x (residual, grad_output, the forward output).
void check_like_input(const Tensor& t, const char* what, const Tensor& x, const char* op) {
  OMPQ_CHECK(t.shape() == x.shape(), op, ": ", what, " of shape ", shape_str(t.shape()),
             " does not match input of shape ", shape_str(x.shape()));
  check_same_dtype(t, x, op);
  check_same_device(t, x, op);
}

void check_input(const Tensor& x, const char* op) {
  OMPQ_CHECK(x.dim() >= 2, op, ": input of shape ", shape_str(x.shape()),
             " must be [N, C] or [N, C, ...]");
}

}  // namespace

BatchNormResult batch_norm_act(const Tensor& x, const Tensor& weight, const Tensor& bias,
                               const Tensor& running_mean, const Tensor& running_var, bool training,
                               double momentum, double eps, NormActivation activation,
                               const Tensor& residual) {
  // Errors name the op the caller used: plain batch norm is this op with nothing fused.
  const bool fused = activation != NormActivation::kIdentity || residual.defined();
  const char* op = fused ? "batch_norm_act" : "batch_norm";
  check_input(x, op);
  check_activation_dtype(x, op);
  Tensor w = checked_channel_vector(weight, "weight", x, op);
  Tensor b = checked_channel_vector(bias, "bias", x, op);
  check_running_buffer(running_mean, "running_mean", x, op);
  check_running_buffer(running_var, "running_var", x, op);
  OMPQ_CHECK(running_mean.defined() == running_var.defined(), op,
             ": running_mean and running_var must be both defined or both undefined");
  if (residual.defined()) check_like_input(residual, "residual", x, op);
  const int64_t channels = x.size(1);
  BatchNormResult result;
  if (training) {
    const int64_t per_channel = x.numel() / std::max<int64_t>(channels, 1);
    OMPQ_CHECK(per_channel > 1, op, ": expected more than 1 value per channel when training, got ",
               "input of shape ", shape_str(x.shape()));
    result.mean = Tensor::empty({channels}, channel_dtype(x), x.device());
    result.var = Tensor::empty({channels}, channel_dtype(x), x.device());
  } else {
    OMPQ_CHECK(running_mean.defined(), op,
               ": eval mode needs running_mean and running_var (got undefined buffers)");
    result.mean = running_mean.detach();
    result.var = running_var.detach();
  }
  const bool channels_last = is_channels_last(x);
  result.output = empty_nchw(x.shape(), channels_last, x.dtype(), x.device());
  if (x.numel() == 0) return result;
  const bool update_running = training && running_mean.defined();
  batch_norm_stub(x.device(), result.output, in_memory_format(x, channels_last),
                  residual.defined() ? in_memory_format(residual, channels_last) : Tensor(), w, b,
                  result.mean, result.var, update_running ? running_mean : Tensor(),
                  update_running ? running_var : Tensor(), training, momentum, eps, activation);
  if (update_running) {
    running_mean.bump_version();
    running_var.bump_version();
  }
  return result;
}

BatchNormResult batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                           const Tensor& running_mean, const Tensor& running_var, bool training,
                           double momentum, double eps) {
  return batch_norm_act(x, weight, bias, running_mean, running_var, training, momentum, eps,
                        NormActivation::kIdentity, Tensor());
}

BatchNormGrads batch_norm_act_backward(const Tensor& grad_output, const Tensor& x,
                                       const Tensor& output, const Tensor& weight,
                                       const Tensor& mean, const Tensor& var, double eps,
                                       bool training, NormActivation activation,
                                       std::array<bool, 4> needed) {
  const bool identity = activation == NormActivation::kIdentity;
  const char* op = identity && !needed[3] ? "batch_norm_backward" : "batch_norm_act_backward";
  check_input(x, op);
  OMPQ_CHECK(x.dtype() == DType::kF32 || x.dtype() == DType::kF64, op, ": input of dtype ",
             dtype_name(x.dtype()), " and shape ", shape_str(x.shape()),
             " (expected f32 or f64: bf16/f16 batch norm is forward only, for inference)");
  check_like_input(grad_output, "grad_output", x, op);
  OMPQ_CHECK(identity || output.defined(), op,
             ": the forward output is needed to differentiate the activation (got undefined)");
  if (!identity) check_like_input(output, "output", x, op);
  Tensor w = checked_channel_vector(weight, "weight", x, op);
  Tensor m = checked_channel_vector(mean, "mean", x, op);
  Tensor v = checked_channel_vector(var, "var", x, op);
  const int64_t channels = x.size(1);
  // grad_output and the output are brought to x's layout; the gradients take it.
  const bool channels_last = is_channels_last(x);
  BatchNormGrads grads;
  if (needed[0]) grads.input = empty_nchw(x.shape(), channels_last, x.dtype(), x.device());
  if (needed[1] && weight.defined())
    grads.weight = Tensor::empty({channels}, x.dtype(), x.device());
  if (needed[2]) grads.bias = Tensor::empty({channels}, x.dtype(), x.device());
  Tensor grad_preactivation;
  if (needed[3]) {
    if (identity) {
      grads.residual = grad_output;
    } else {
      grad_preactivation = empty_nchw(x.shape(), channels_last, x.dtype(), x.device());
      grads.residual = grad_preactivation;
    }
  }
  if (!grads.input.defined() && !grads.weight.defined() && !grads.bias.defined() &&
      !grad_preactivation.defined()) {
    return grads;
  }
  batch_norm_backward_stub(
      x.device(), in_memory_format(grad_output, channels_last), in_memory_format(x, channels_last),
      identity ? Tensor() : in_memory_format(output, channels_last), w, m, v, eps, training,
      activation, grads.input, grads.weight, grads.bias, grad_preactivation);
  return grads;
}

BatchNormGrads batch_norm_backward(const Tensor& grad_output, const Tensor& x, const Tensor& weight,
                                   const Tensor& mean, const Tensor& var, double eps, bool training,
                                   std::array<bool, 3> needed) {
  return batch_norm_act_backward(grad_output, x, Tensor(), weight, mean, var, eps, training,
                                 NormActivation::kIdentity,
                                 {needed[0], needed[1], needed[2], false});
}

}  // namespace ops
}  // namespace ompq
