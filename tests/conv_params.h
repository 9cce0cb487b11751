// The convolution geometry most tests use: the same stride, padding and dilation along both axes.
#pragma once

#include <cstdint>

#include "core/ops/conv.h"

namespace ompq::testing {

inline Conv2dParams square_conv(int64_t stride, int64_t padding, int64_t dilation = 1,
                                int64_t groups = 1) {
  Conv2dParams p;
  p.stride = {stride, stride};
  p.padding = {padding, padding};
  p.dilation = {dilation, dilation};
  p.groups = groups;
  return p;
}

}  // namespace ompq::testing
