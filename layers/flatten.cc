#include "layers/flatten.h"

namespace ompq::nn {

Flatten::Flatten(int64_t start_dim, int64_t end_dim) : start_dim_(start_dim), end_dim_(end_dim) {}

Tensor Flatten::forward(const Tensor& x) { return x.flatten(start_dim_, end_dim_); }

}  // namespace ompq::nn
