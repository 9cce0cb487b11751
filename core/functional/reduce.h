// Autograd-aware reductions over dims (empty `dims`: all dims; negative dims count from the end).
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace ompq {

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Divides by n - 1 when `unbiased` (torch.var's default), else by n.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, bool unbiased = true,
           bool keepdim = false);
// Largest / smallest value, with torch.amax / torch.amin semantics: NaN propagates, and the
// gradient is split evenly among the elements that tie for the extremum (torch.max(dim) would
// instead route it all to one index).
Tensor amax(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Index (i64) of the first maximum along `dim`; not differentiable.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);

}  // namespace ompq
