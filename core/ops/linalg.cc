#include "core/ops/linalg.h"

#include "core/ops/amp.h"

namespace ompq {

DispatchStub<MatmulKernel> matmul_stub("matmul");

namespace {

// m (detached) as a [B, rows, cols] matrix batch that a kernel accepts: the last two dims
// row-major or column-major and batches densely packed; copied only when it is not already.
Tensor as_matrix_batch(const Tensor& m) {
  Tensor t = m.detach();
  if (t.dim() == 2) {
    t = as_strided(t, {1, t.size(0), t.size(1)}, {t.size(0) * t.size(1), t.stride(0), t.stride(1)},
                   t.offset());
  }
  const int64_t rows = t.size(1), cols = t.size(2);
  const bool row_major = t.stride(2) == 1 && t.stride(1) == cols;
  const bool col_major = t.stride(1) == 1 && t.stride(2) == rows;
  const bool packed = t.size(0) == 1 || t.stride(0) == rows * cols;
  if ((row_major || col_major) && packed) return t;
  return t.contiguous();
}

Tensor matmul_3d(const Tensor& a, const Tensor& b, const Tensor& bias, DType out_dtype) {
  Tensor out = Tensor::empty({a.size(0), a.size(1), b.size(2)}, out_dtype, a.device());
  if (out.numel() == 0) return out;
  if (a.size(2) == 0) {
    if (bias.defined()) return out.copy_(bias.detach());
    return out.fill_(0.0);
  }
  matmul_stub(a.device(), out, a, b, bias);
  return out;
}

}  // namespace

namespace ops {

Tensor matmul(const Tensor& a, const Tensor& b) { return matmul(a, b, a.dtype()); }

Tensor matmul(const Tensor& a, const Tensor& b, DType out_dtype) {
  OMPQ_CHECK((a.dim() == 2 || a.dim() == 3) && b.dim() == a.dim(),
             "matmul: expected two 2-D or two 3-D tensors, got shapes ", shape_str(a.shape()),
             " and ", shape_str(b.shape()));
  OMPQ_CHECK(a.size(-1) == b.size(-2), "matmul: shapes ", shape_str(a.shape()), " and ",
             shape_str(b.shape()), " cannot be multiplied (", a.size(-1), " != ", b.size(-2), ")");
  OMPQ_CHECK(a.dim() == 2 || a.size(0) == b.size(0), "matmul: batch sizes differ in shapes ",
             shape_str(a.shape()), " and ", shape_str(b.shape()));
  check_same_dtype(a, b, "matmul");
  check_product_dtypes("matmul", a.dtype(), out_dtype);
  check_same_device(a, b, "matmul");
  Tensor out = matmul_3d(as_matrix_batch(a), as_matrix_batch(b), Tensor(), out_dtype);
  if (a.dim() == 3) return out;
  return as_strided(out, {a.size(0), b.size(1)}, {b.size(1), 1}, 0);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  return linear(x, weight, bias, x.dtype());
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, DType out_dtype) {
  OMPQ_CHECK(x.dim() >= 1 && weight.dim() == 2 && x.size(-1) == weight.size(1),
             "linear: input of shape ", shape_str(x.shape()), " does not match weight of shape ",
             shape_str(weight.shape()), " (expected [..., ",
             weight.dim() == 2 ? weight.size(1) : -1, "] and [out, in])");
  check_same_dtype(x, weight, "linear");
  check_product_dtypes("linear", x.dtype(), out_dtype);
  check_same_device(x, weight, "linear");
  if (bias.defined()) {
    OMPQ_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "linear: bias of shape ",
               shape_str(bias.shape()), " does not match weight of shape ",
               shape_str(weight.shape()));
    OMPQ_CHECK(bias.dtype() == out_dtype, "linear: bias of dtype ", dtype_name(bias.dtype()),
               " for an output of dtype ", dtype_name(out_dtype), " (the bias takes the output's)");
    check_same_device(x, bias, "linear");
  }
  const int64_t in = weight.size(1), out_features = weight.size(0);
  Tensor rows = x.detach().reshape({-1, in});
  Tensor w = weight.detach();
  Tensor w_t = as_strided(w, {in, out_features}, {w.stride(1), w.stride(0)}, w.offset());
  Tensor out = matmul_3d(as_matrix_batch(rows), as_matrix_batch(w_t),
                         bias.defined() ? bias.detach().contiguous() : Tensor(), out_dtype);
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  return as_strided(out, out_shape, contiguous_strides(out_shape), 0);
}

}  // namespace ops
}  // namespace ompq
