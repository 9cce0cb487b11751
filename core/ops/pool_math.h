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

}  // namespace ompq
