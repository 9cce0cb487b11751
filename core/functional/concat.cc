#include "core/functional/concat.h"

#include "core/autograd.h"
#include "core/ops/copy.h"
#include "core/trace.h"

namespace ompq {

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  return trace::traced(
      [&]() -> Tensor {
        OMPQ_CHECK(!tensors.empty(), "cat: expected a non-empty list of tensors");
        const Tensor& first = tensors[0];
        OMPQ_CHECK(first.dim() > 0,
                   "cat: tensor 0 is 0-dim; only tensors with dims can be concatenated");
        dim = wrap_dim(dim, first.dim(), "cat");
        Shape out_shape = first.shape();
        std::vector<int64_t> starts;
        int64_t size = 0;
        for (size_t i = 0; i < tensors.size(); ++i) {
          const Tensor& t = tensors[i];
          bool matches = t.dim() == first.dim();
          for (int64_t d = 0; matches && d < t.dim(); ++d)
            matches = d == dim || t.size(d) == first.size(d);
          OMPQ_CHECK(matches, "cat: tensor ", i, " of shape ", shape_str(t.shape()),
                     " does not match tensor 0 of shape ", shape_str(first.shape()),
                     " in the dims other than dim ", dim);
          check_same_dtype(t, first, "cat");
          check_same_device(t, first, "cat");
          starts.push_back(size);
          size += t.size(dim);
        }
        out_shape[dim] = size;
        Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
        for (size_t i = 0; i < tensors.size(); ++i) {
          ops::copy_(out.slice(dim, starts[i], starts[i] + tensors[i].size(dim)),
                     tensors[i].detach());
        }
        if (!any_requires_grad(tensors)) return out;
        std::vector<int64_t> sizes;
        for (const Tensor& t : tensors) sizes.push_back(t.size(dim));
        return record(out, tensors, "CatBackward", [dim, starts, sizes](const Tensor& grad) {
          std::vector<Tensor> grads;
          for (size_t i = 0; i < starts.size(); ++i) {
            grads.push_back(grad.slice(dim, starts[i], starts[i] + sizes[i]));
          }
          return grads;
        });
      },
      [&] {
        trace::OpCall c{trace::Op::kConcat, tensors};
        c.attributes.dim = dim;
        return c;
      });
}

}  // namespace ompq
