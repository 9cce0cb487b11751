#include "core/functional/linalg.h"

#include "core/autograd.h"
#include "core/ops/linalg.h"
#include "core/ops/reduce.h"

namespace ompq {
namespace {

// The transpose of the last two dims as a view: the matmul kernels take it without a copy.
Tensor transposed(const Tensor& m) { return m.dim() == 2 ? m.t() : m.transpose(1, 2); }

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  Tensor out = ops::matmul(a, b);
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  return record(out, {a, b}, "MatmulBackward",
                [a = a.detach(), b = b.detach(), need_a, need_b](const Tensor& grad) {
                  return std::vector<Tensor>{need_a ? ops::matmul(grad, transposed(b)) : Tensor(),
                                             need_b ? ops::matmul(transposed(a), grad) : Tensor()};
                });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  Tensor out = ops::linear(x, weight, bias);
  const bool need_x = x.requires_grad(), need_weight = weight.requires_grad();
  const bool need_bias = bias.defined() && bias.requires_grad();
  return record(out, {x, weight, bias}, "LinearBackward",
                [x = x.detach(), weight = weight.detach(), need_x, need_weight,
                 need_bias](const Tensor& grad) {
                  const int64_t in = weight.size(1), out_features = weight.size(0);
                  Tensor grad_rows = grad.reshape({-1, out_features});
                  std::vector<Tensor> grads(3);
                  if (need_x) grads[0] = ops::matmul(grad_rows, weight).reshape(x.shape());
                  if (need_weight) {
                    grads[1] = ops::matmul(grad_rows.t(), x.reshape({-1, in}));
                  }
                  if (need_bias) grads[2] = ops::sum(grad_rows, {0}, /*keepdim=*/false);
                  return grads;
                });
}

}  // namespace ompq
