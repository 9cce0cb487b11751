// Shapes and strides are plain vectors of int64; these helpers keep their arithmetic in one place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ompq {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
// Row-major strides (in elements) of a contiguous tensor of this shape.
Shape contiguous_strides(const Shape& shape);
// "[2, 3, 4]".
std::string shape_str(const Shape& shape);
// Wraps a possibly negative dim index into [0, ndim); throws naming `op` when out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
// NumPy broadcasting of two shapes; throws naming `op` and both shapes when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace ompq
