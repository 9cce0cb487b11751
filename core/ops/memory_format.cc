#include "core/ops/memory_format.h"

#include "core/ops/conv.h"

namespace ompq {

Tensor in_memory_format(const Tensor& t, bool channels_last) {
  Tensor d = t.detach();
  if (!channels_last) return d.contiguous();
  if (is_channels_last(d)) return d;
  Tensor out = empty_nchw(d.shape(), true, d.dtype(), d.device());
  out.copy_(d);
  return out;
}

}  // namespace ompq
