#include "core/functional/reduce.h"

#include "core/autograd.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"

namespace ompq {
namespace {

using Grads = std::vector<Tensor>;

// The output gradient seen with keepdim, so that it broadcasts against the input.
Tensor unsqueeze_grad(const Tensor& g, const Shape& keepdim_shape) {
  return g.shape() == keepdim_shape ? g : g.reshape(keepdim_shape);
}

// Gradient of x for amax/amin: g spread evenly over the elements equal to the result.
Tensor extremum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, bool is_max) {
  const char* name = is_max ? "amax" : "amin";
  Tensor out = is_max ? ops::amax(x, dims, keepdim) : ops::amin(x, dims, keepdim);
  if (!any_requires_grad({x})) return out;
  Shape kept = ops::keepdim_shape(x, dims, name);
  Tensor xd = x.detach(), result = out.detach().reshape(kept);
  return record(out, {x}, is_max ? "AmaxBackward" : "AminBackward", [=](const Tensor& g) {
    Tensor hits = ops::eq(xd, result);
    Tensor share = ops::div(unsqueeze_grad(g, kept), ops::sum(hits, dims, /*keepdim=*/true));
    return Grads{ops::mul(hits, share)};
  });
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor out = ops::sum(x, dims, keepdim);
  if (!any_requires_grad({x})) return out;
  Shape kept = ops::keepdim_shape(x, dims, "sum"), shape = x.shape();
  return record(out, {x}, "SumBackward", [kept, shape](const Tensor& g) {
    return Grads{unsqueeze_grad(g, kept).expand(shape).contiguous()};
  });
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor out = ops::mean(x, dims, keepdim);
  if (!any_requires_grad({x})) return out;
  Shape kept = ops::keepdim_shape(x, dims, "mean"), shape = x.shape();
  const double n = static_cast<double>(ops::reduced_count(x, dims, "mean"));
  return record(out, {x}, "MeanBackward", [kept, shape, n](const Tensor& g) {
    return Grads{ops::div(unsqueeze_grad(g, kept), n).expand(shape).contiguous()};
  });
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool unbiased, bool keepdim) {
  Tensor out = ops::var(x, dims, unbiased, keepdim);
  if (!any_requires_grad({x})) return out;
  Shape kept = ops::keepdim_shape(x, dims, "var");
  const double n = static_cast<double>(ops::reduced_count(x, dims, "var"));
  const double denominator = n - (unbiased ? 1.0 : 0.0);
  Tensor xd = x.detach();
  return record(out, {x}, "VarBackward", [=](const Tensor& g) {
    // d var / dx_i = 2 (x_i - mean) / (n - correction)
    Tensor centered = ops::sub(xd, ops::mean(xd, dims, /*keepdim=*/true));
    return Grads{ops::mul(centered, ops::mul(unsqueeze_grad(g, kept), 2.0 / denominator))};
  });
}

Tensor amax(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum(x, dims, keepdim, /*is_max=*/true);
}

Tensor amin(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum(x, dims, keepdim, /*is_max=*/false);
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { return ops::argmax(x, dim, keepdim); }

}  // namespace ompq
