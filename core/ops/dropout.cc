#include "core/ops/dropout.h"

namespace ompq {

DispatchStub<DropoutKernel> dropout_stub("dropout");

namespace ops {

Tensor dropout(const Tensor& x, double p, uint64_t seed, uint64_t stream_start) {
  OMPQ_CHECK(p >= 0.0 && p < 1.0, "dropout: probability p = ", p, " is outside [0, 1)");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.numel() > 0) dropout_stub(x.device(), out, x.detach().contiguous(), p, seed, stream_start);
  return out;
}

}  // namespace ops
}  // namespace ompq
