#include "core/functional/softmax.h"

#include "core/autograd.h"
#include "core/ops/softmax.h"

namespace ompq {

Tensor softmax(const Tensor& x, int64_t dim) {
  Tensor out = ops::softmax(x, dim);
  if (!any_requires_grad({x})) return out;
  return record(out, {x}, "SoftmaxBackward", [y = out.detach(), dim](const Tensor& grad) {
    return std::vector<Tensor>{ops::softmax_backward(grad, y, dim)};
  });
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  Tensor out = ops::log_softmax(x, dim);
  if (!any_requires_grad({x})) return out;
  return record(out, {x}, "LogSoftmaxBackward", [y = out.detach(), dim](const Tensor& grad) {
    return std::vector<Tensor>{ops::log_softmax_backward(grad, y, dim)};
  });
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing) {
  ops::CrossEntropyResult result = ops::cross_entropy(logits, target, label_smoothing);
  if (!any_requires_grad({logits})) return result.loss;
  return record(result.loss, {logits}, "CrossEntropyBackward",
                [logits = logits.detach(), target = target.detach(), lse = result.log_sum_exp,
                 label_smoothing](const Tensor& grad) {
                  return std::vector<Tensor>{
                      ops::cross_entropy_backward(grad, logits, target, lse, label_smoothing)};
                });
}

}  // namespace ompq
