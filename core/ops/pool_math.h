// Pooling window bounds shared by the CPU and CUDA kernels (PyTorch's exact conventions), so that
// the CPU tests cover the index math the GPU runs.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace ompq {

// The input rows [begin, end) read by output row `o` of a max or average pool, clipped to the
// input; `divisor_extent` is the window extent clipped only to the padded input, which is what
// average pooling with count_include_pad divides by.
struct PoolWindow {
  int64_t begin, end, divisor_extent;
};

OMPQ_HD inline PoolWindow pool_window(int64_t o, int64_t kernel, int64_t stride, int64_t pad,
                                      int64_t in) {
  int64_t begin = o * stride - pad;
  int64_t end = begin + kernel < in + pad ? begin + kernel : in + pad;
  PoolWindow w;
  w.divisor_extent = end - begin;
  w.begin = begin > 0 ? begin : 0;
  w.end = end < in ? end : in;
  return w;
}

// Adaptive pooling bin `o` of `out` over `in` rows: [floor(o*in/out), ceil((o+1)*in/out)).
OMPQ_HD inline int64_t adaptive_bin_begin(int64_t o, int64_t in, int64_t out) {
  return (o * in) / out;
}
OMPQ_HD inline int64_t adaptive_bin_end(int64_t o, int64_t in, int64_t out) {
  return ((o + 1) * in + out - 1) / out;
}

// The outputs [*first, *last] along one axis whose windows may contain input row i: every output
// whose window does is in the range (a gathering backward pass checks each candidate's window).
OMPQ_HD inline void pool_outputs_covering(int64_t i, int64_t kernel, int64_t stride, int64_t pad,
                                          int64_t out, int64_t* first, int64_t* last) {
  const int64_t lowest = i + pad - kernel + 1;  // o * stride >= lowest
  *first = lowest <= 0 ? 0 : (lowest + stride - 1) / stride;
  const int64_t highest = (i + pad) / stride;  // o * stride <= i + pad
  *last = highest < out - 1 ? highest : out - 1;
}

// The same for adaptive bins: those with begin <= i < end.
OMPQ_HD inline void adaptive_outputs_covering(int64_t i, int64_t in, int64_t out, int64_t* first,
                                              int64_t* last) {
  *first = (i * out) / in;
  const int64_t highest = ((i + 1) * out - 1) / in;
  *last = highest < out - 1 ? highest : out - 1;
}

}  // namespace ompq
