#include "core/ops/reduce.h"

#include "core/ops/elementwise.h"

namespace ompq {

DispatchStub<ReduceKernel> reduce_stub("reduce");
DispatchStub<ArgmaxKernel> argmax_stub("argmax");

namespace ops {
namespace {

// Which dims of x are reduced; throws naming `op` on an out-of-range or repeated dim.
std::vector<bool> reduced_mask(const Tensor& x, const std::vector<int64_t>& dims, const char* op) {
  std::vector<bool> mask(x.dim(), dims.empty());
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, x.dim(), op);
    if (x.dim() == 0) continue;  // dim 0 / -1 of a scalar names the scalar itself
    OMPQ_CHECK(!mask[w], op, ": dim ", d, " repeated in ", shape_str(dims),
               " for a tensor of shape ", shape_str(x.shape()));
    mask[w] = true;
  }
  return mask;
}

Shape squeezed_shape(const Tensor& x, const std::vector<bool>& mask) {
  Shape shape;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (!mask[d]) shape.push_back(x.size(d));
  }
  return shape;
}

void check_compute_dtype(const Tensor& x, const char* op) {
  OMPQ_CHECK(x.dtype() == DType::kF32 || x.dtype() == DType::kF64, op, ": unsupported dtype ",
             dtype_name(x.dtype()), " for a tensor of shape ", shape_str(x.shape()),
             " (expected f32 or f64)");
}

Tensor reduce(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, ReduceOp op,
              double scale, const char* name) {
  check_compute_dtype(x, name);
  std::vector<bool> mask = reduced_mask(x, dims, name);
  Shape kept = keepdim_shape(x, dims, name);
  if (op != ReduceOp::kSum) {
    for (int64_t d = 0; d < x.dim(); ++d) {
      OMPQ_CHECK(!mask[d] || x.size(d) > 0, name, ": cannot reduce over dim ", d,
                 " of size 0 (shape ", shape_str(x.shape()), "): there is no identity");
    }
  }
  Tensor out = Tensor::empty(kept, x.dtype(), x.device());
  if (x.numel() == 0) {
    out.fill_(0.0 * scale);  // empty sums are 0; an empty mean is 0 * (1/0) = NaN, as in PyTorch
  } else {
    reduce_stub(x.device(), out, x, op, scale);
  }
  return keepdim ? out : out.view(squeezed_shape(x, mask));
}

}  // namespace

int64_t reduced_count(const Tensor& x, const std::vector<int64_t>& dims, const char* op) {
  std::vector<bool> mask = reduced_mask(x, dims, op);
  int64_t n = 1;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (mask[d]) n *= x.size(d);
  }
  return n;
}

Shape keepdim_shape(const Tensor& x, const std::vector<int64_t>& dims, const char* op) {
  std::vector<bool> mask = reduced_mask(x, dims, op);
  Shape shape = x.shape();
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (mask[d]) shape[d] = 1;
  }
  return shape;
}

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce(x, dims, keepdim, ReduceOp::kSum, 1.0, "sum");
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  // An empty reduction gives 0 * (1/0) = NaN, as torch.mean does.
  double n = static_cast<double>(reduced_count(x, dims, "mean"));
  return reduce(x, dims, keepdim, ReduceOp::kSum, 1.0 / n, "mean");
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool unbiased, bool keepdim) {
  check_compute_dtype(x, "var");
  double n = static_cast<double>(reduced_count(x, dims, "var"));
  Tensor centered = sub(x, mean(x, dims, /*keepdim=*/true));
  // n - 1 = 0 (one element, unbiased) gives 0/0 = NaN, as torch.var does.
  return reduce(square(centered), dims, keepdim, ReduceOp::kSum, 1.0 / (n - (unbiased ? 1 : 0)),
                "var");
}

Tensor amax(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce(x, dims, keepdim, ReduceOp::kMax, 1.0, "amax");
}

Tensor amin(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce(x, dims, keepdim, ReduceOp::kMin, 1.0, "amin");
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  check_compute_dtype(x, "argmax");
  std::vector<bool> mask = reduced_mask(x, {dim}, "argmax");
  int64_t d = x.dim() == 0 ? 0 : wrap_dim(dim, x.dim(), "argmax");
  OMPQ_CHECK(x.dim() == 0 || x.size(d) > 0, "argmax: dim ", dim, " of shape ", shape_str(x.shape()),
             " is empty");
  Tensor out = Tensor::empty(keepdim_shape(x, {dim}, "argmax"), DType::kI64, x.device());
  if (x.dim() == 0) return out.fill_(0);
  if (out.numel() > 0) argmax_stub(x.device(), out, x, d);
  return keepdim ? out : out.view(squeezed_shape(x, mask));
}

}  // namespace ops
}  // namespace ompq
