#include "core/ops/amp.h"

#include <cmath>

#include "core/ops/elementwise.h"

namespace ompq {

DispatchStub<UnscaleGradKernel> unscale_grad_stub("unscale_grads_");

void check_product_dtypes(const char* op, DType operands, DType out) {
  const bool low = operands == DType::kBF16 || operands == DType::kF16;
  const bool wide = operands == DType::kF32 || operands == DType::kF64;
  OMPQ_CHECK(low || wide, op, ": unsupported dtype ", dtype_name(operands),
             " (expected f32, f64, bf16 or f16)");
  OMPQ_CHECK(out == operands || (low && out == DType::kF32), op, ": operands of dtype ",
             dtype_name(operands), " cannot give an output of dtype ", dtype_name(out),
             " (expected ", dtype_name(operands), low ? " or f32" : "", ")");
}

bool low_precision_activations_supported(Device device) { return device.is_cpu(); }

void check_activation_dtype(const Tensor& t, const char* op) {
  const DType dtype = t.dtype();
  if (dtype == DType::kF32 || dtype == DType::kF64) return;
  const bool low = dtype == DType::kBF16 || dtype == DType::kF16;
  const bool supported = low && low_precision_activations_supported(t.device());
  OMPQ_CHECK(supported, op, ": unsupported dtype ", dtype_name(dtype), " for a tensor of shape ",
             shape_str(t.shape()), " on ", t.device().str(),
             low ? " (expected f32 or f64: bf16 and f16 run on the CPU only)"
                 : " (expected f32 or f64, or bf16/f16 on the CPU)");
}

namespace ops {

void unscale_grads_(const std::vector<Tensor>& grads, double inv_scale, const Tensor& found_inf) {
  OMPQ_CHECK(std::isfinite(inv_scale), "unscale_grads_: inv_scale must be finite, got ", inv_scale);
  OMPQ_CHECK(found_inf.defined() && found_inf.dtype() == DType::kF32 && found_inf.numel() == 1,
             "unscale_grads_: found_inf must be an f32 tensor of one element, got ",
             found_inf.defined() ? found_inf.str() : "an undefined tensor");
  for (const Tensor& grad : grads) {
    OMPQ_CHECK(grad.defined(), "unscale_grads_: undefined gradient in the list");
    OMPQ_CHECK(grad.dtype() == DType::kF32 || grad.dtype() == DType::kF64,
               "unscale_grads_: gradient of shape ", shape_str(grad.shape()), " has dtype ",
               dtype_name(grad.dtype()), " (expected f32 or f64: master weights' gradients)");
    OMPQ_CHECK(is_dense(grad), "unscale_grads_: gradient of shape ", shape_str(grad.shape()),
               " and strides ", shape_str(grad.strides()), " is not dense");
    check_same_device(grad, found_inf, "unscale_grads_");
    if (grad.numel() == 0) continue;
    unscale_grad_stub(grad.device(), grad, inv_scale, found_inf);
    grad.bump_version();
  }
  found_inf.bump_version();
}

}  // namespace ops
}  // namespace ompq
