// Where the elements of a [N, C, rows, cols] pooling operand lie in memory, NCHW-contiguous or
// channels_last (NHWC): host-and-device code, so that a CPU test checks the index math the CUDA
// pooling kernels (cuda/pool_kernels.cu) run.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace ompq::cuda {

// The elements of one (image n, channel c) plane: pixel p = row * cols + col is at base + p * step
// (NCHW: the plane is contiguous; channels_last: the channels of a pixel are, so that consecutive
// threads of a channels_last kernel, which take consecutive channels, access consecutive
// addresses).
struct PlaneSpan {
  int64_t base, step;
  OMPQ_HD int64_t operator[](int64_t pixel) const { return base + pixel * step; }
};

// Element coordinates in one of the two memory layouts (kChannelsLast: NHWC).
template <bool kChannelsLast>
struct PoolLayout {
  int64_t channels;

  // The (n, c, row, col) of memory index i of a tensor with rows x cols planes.
  template <typename index_t>
  OMPQ_HD void split(index_t i, int64_t rows, int64_t cols, index_t* n, index_t* c, index_t* row,
                     index_t* col) const {
    const index_t C = static_cast<index_t>(channels), R = static_cast<index_t>(rows),
                  W = static_cast<index_t>(cols);
    if (kChannelsLast) {
      const index_t pixel = i / C, r = pixel / W;
      *c = i - pixel * C;
      *col = pixel - r * W;
      *n = r / R;
      *row = r - *n * R;
    } else {
      const index_t r = i / W, plane = r / R;
      *col = i - r * W;
      *row = r - plane * R;
      *n = plane / C;
      *c = plane - *n * C;
    }
  }

  // Plane (n, c) of a tensor with `pixels` elements per plane.
  OMPQ_HD PlaneSpan plane(int64_t n, int64_t c, int64_t pixels) const {
    return kChannelsLast ? PlaneSpan{n * pixels * channels + c, channels}
                         : PlaneSpan{(n * channels + c) * pixels, 1};
  }
};

}  // namespace ompq::cuda
