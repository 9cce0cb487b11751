// Softmax, log-softmax and the fused cross-entropy loss (raw: no autograd). Kernels see a softmax
// input as a contiguous [outer, size, inner] array, normalized along `size`.
#pragma once

#include "core/dispatch.h"
#include "core/tensor.h"

namespace ompq {

// out = softmax(x) (or log_softmax(x) when `log`) along dim; x and out contiguous.
using SoftmaxKernel = void(const Tensor& out, const Tensor& x, int64_t dim, bool log);
// grad_input from grad_output and the forward output (all contiguous, same shape).
using SoftmaxBackwardKernel = void(const Tensor& grad_input, const Tensor& grad_output,
                                   const Tensor& output, int64_t dim, bool log);
// logits [N, C] contiguous, target [N] i64. Writes log_sum_exp[n] = log(sum_c exp(logits[n, c]))
// and the 0-dim batch-mean loss. Throws when a target is outside [0, C).
using CrossEntropyKernel = void(const Tensor& loss, const Tensor& log_sum_exp, const Tensor& logits,
                                const Tensor& target, double label_smoothing);
// grad_logits [N, C] given the 0-dim gradient of the loss.
using CrossEntropyBackwardKernel = void(const Tensor& grad_logits, const Tensor& grad_loss,
                                        const Tensor& logits, const Tensor& target,
                                        const Tensor& log_sum_exp, double label_smoothing);
extern DispatchStub<SoftmaxKernel> softmax_stub;
extern DispatchStub<SoftmaxBackwardKernel> softmax_backward_stub;
extern DispatchStub<CrossEntropyKernel> cross_entropy_stub;
extern DispatchStub<CrossEntropyBackwardKernel> cross_entropy_backward_stub;

namespace ops {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// Gradients w.r.t. x, given the forward output.
Tensor softmax_backward(const Tensor& grad_output, const Tensor& output, int64_t dim);
Tensor log_softmax_backward(const Tensor& grad_output, const Tensor& output, int64_t dim);

struct CrossEntropyResult {
  Tensor loss;         // 0-dim
  Tensor log_sum_exp;  // [N], saved for the backward pass
};

// Mean over the batch of the (label-smoothed) negative log-likelihood of log_softmax(logits).
CrossEntropyResult cross_entropy(const Tensor& logits, const Tensor& target,
                                 double label_smoothing);
Tensor cross_entropy_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& target,
                              const Tensor& log_sum_exp, double label_smoothing);

}  // namespace ops
}  // namespace ompq
