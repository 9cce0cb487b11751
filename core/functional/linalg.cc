#include "core/functional/linalg.h"

#include "core/autocast.h"
#include "core/autograd.h"
#include "core/ops/linalg.h"
#include "core/ops/reduce.h"
#include "core/trace.h"

namespace ompq {
namespace {

// The transpose of the last two dims as a view: the matmul kernels take it without a copy.
Tensor transposed(const Tensor& m) { return m.dim() == 2 ? m.t() : m.transpose(1, 2); }

}  // namespace

// Under autocast the operands are cast to the low-precision dtype (autograd-aware) and the
// product is f32. Backward multiplies in the operands' dtype: an f32 incoming gradient is rounded
// to it first, and the gradients come out in the incoming gradient's dtype.
Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = autocast_cast(a_in), b = autocast_cast(b_in);
  Tensor out = ops::matmul(a, b, autocast_output_dtype(a.dtype()));
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  return record(out, {a, b}, "MatmulBackward",
                [a = a.detach(), b = b.detach(), need_a, need_b](const Tensor& grad) {
                  const Tensor g = grad.to(a.dtype());
                  return std::vector<Tensor>{
                      need_a ? ops::matmul(g, transposed(b), grad.dtype()) : Tensor(),
                      need_b ? ops::matmul(transposed(a), g, grad.dtype()) : Tensor()};
                });
}

Tensor linear(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias) {
  return trace::traced(
      [&]() -> Tensor {
        const Tensor x = autocast_cast(x_in), weight = autocast_cast(weight_in);
        Tensor out = ops::linear(x, weight, bias, autocast_output_dtype(x.dtype()));
        const bool need_x = x.requires_grad(), need_weight = weight.requires_grad();
        const bool need_bias = bias.defined() && bias.requires_grad();
        return record(out, {x, weight, bias}, "LinearBackward",
                      [x = x.detach(), weight = weight.detach(), need_x, need_weight,
                       need_bias](const Tensor& grad) {
                        const int64_t in = weight.size(1), out_features = weight.size(0);
                        Tensor grad_rows = grad.reshape({-1, out_features});
                        const Tensor g = grad_rows.to(x.dtype());
                        std::vector<Tensor> grads(3);
                        if (need_x)
                          grads[0] = ops::matmul(g, weight, grad.dtype()).reshape(x.shape());
                        if (need_weight) {
                          grads[1] = ops::matmul(g.t(), x.reshape({-1, in}), grad.dtype());
                        }
                        // From the unrounded gradient: the bias is an f32 master weight.
                        if (need_bias) grads[2] = ops::sum(grad_rows, {0}, /*keepdim=*/false);
                        return grads;
                      });
      },
      [&] {
        return trace::OpCall{trace::Op::kLinear, {x_in}, {weight_in, bias}};
      });
}

}  // namespace ompq
