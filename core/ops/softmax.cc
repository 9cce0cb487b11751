#include "core/ops/softmax.h"

namespace ompq {

DispatchStub<SoftmaxKernel> softmax_stub("softmax");
DispatchStub<SoftmaxBackwardKernel> softmax_backward_stub("softmax_backward");
DispatchStub<CrossEntropyKernel> cross_entropy_stub("cross_entropy");
DispatchStub<CrossEntropyBackwardKernel> cross_entropy_backward_stub("cross_entropy_backward");

namespace ops {
namespace {

Tensor softmax_forward(const Tensor& x, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  dim = wrap_dim(dim, x.dim(), op);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.numel() > 0) softmax_stub(x.device(), out, x.detach().contiguous(), dim, log);
  return out;
}

Tensor softmax_backward_impl(const Tensor& grad_output, const Tensor& output, int64_t dim,
                             bool log) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  dim = wrap_dim(dim, output.dim(), op);
  OMPQ_CHECK(grad_output.shape() == output.shape(), op, ": grad_output of shape ",
             shape_str(grad_output.shape()), " does not match output of shape ",
             shape_str(output.shape()));
  check_same_dtype(grad_output, output, op);
  check_same_device(grad_output, output, op);
  Tensor grad_input = Tensor::empty(output.shape(), output.dtype(), output.device());
  if (output.numel() > 0) {
    softmax_backward_stub(output.device(), grad_input, grad_output.detach().contiguous(),
                          output.detach().contiguous(), dim, log);
  }
  return grad_input;
}

void check_cross_entropy_args(const Tensor& logits, const Tensor& target, double label_smoothing,
                              const char* op) {
  OMPQ_CHECK(logits.dim() == 2, op, ": logits of shape ", shape_str(logits.shape()),
             " must be [N, C]");
  OMPQ_CHECK(target.dtype() == DType::kI64, op, ": target has dtype ", dtype_name(target.dtype()),
             " (expected i64 class indices)");
  OMPQ_CHECK(target.dim() == 1 && target.size(0) == logits.size(0), op, ": target of shape ",
             shape_str(target.shape()), " does not match logits of shape ",
             shape_str(logits.shape()), " (expected [", logits.size(0), "])");
  OMPQ_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op, ": label_smoothing ",
             label_smoothing, " is outside [0, 1]");
  check_same_device(logits, target, op);
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_forward(x, dim, /*log=*/false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_forward(x, dim, /*log=*/true); }

Tensor softmax_backward(const Tensor& grad_output, const Tensor& output, int64_t dim) {
  return softmax_backward_impl(grad_output, output, dim, /*log=*/false);
}

Tensor log_softmax_backward(const Tensor& grad_output, const Tensor& output, int64_t dim) {
  return softmax_backward_impl(grad_output, output, dim, /*log=*/true);
}

CrossEntropyResult cross_entropy(const Tensor& logits, const Tensor& target,
                                 double label_smoothing) {
  check_cross_entropy_args(logits, target, label_smoothing, "cross_entropy");
  CrossEntropyResult result;
  result.loss = Tensor::empty({}, logits.dtype(), logits.device());
  result.log_sum_exp = Tensor::empty({logits.size(0)}, logits.dtype(), logits.device());
  cross_entropy_stub(logits.device(), result.loss, result.log_sum_exp, logits.detach().contiguous(),
                     target.detach().contiguous(), label_smoothing);
  return result;
}

Tensor cross_entropy_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& target,
                              const Tensor& log_sum_exp, double label_smoothing) {
  const char* op = "cross_entropy_backward";
  check_cross_entropy_args(logits, target, label_smoothing, op);
  OMPQ_CHECK(grad_loss.numel() == 1, op, ": grad_loss of shape ", shape_str(grad_loss.shape()),
             " must have one element");
  check_same_dtype(grad_loss, logits, op);
  Tensor grad_logits = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
  if (logits.numel() > 0) {
    cross_entropy_backward_stub(logits.device(), grad_logits, grad_loss.detach().contiguous(),
                                logits.detach().contiguous(), target.detach().contiguous(),
                                log_sum_exp.detach().contiguous(), label_smoothing);
  }
  return grad_logits;
}

}  // namespace ops
}  // namespace ompq
