#include "core/ops/copy.h"

namespace ompq {

DispatchStub<CopyKernel> copy_stub("copy_");
DispatchStub<FillKernel> fill_stub("fill_");

namespace ops {

void copy_(const Tensor& dst, const Tensor& src) {
  Tensor expanded = src;
  if (src.shape() != dst.shape()) {
    Shape b = broadcast_shapes(dst.shape(), src.shape(), "copy_");
    OMPQ_CHECK(b == dst.shape(), "copy_: source of shape ", shape_str(src.shape()),
               " cannot be broadcast to destination shape ", shape_str(dst.shape()));
    expanded = src.detach().expand(dst.shape());
  }
  if (dst.numel() == 0) return;
  Device device = dst.device().is_cpu() ? src.device() : dst.device();
  copy_stub(device, dst, expanded);
  dst.bump_version();
}

void fill_(const Tensor& dst, double value) {
  if (dst.numel() == 0) return;
  fill_stub(dst.device(), dst, value);
  dst.bump_version();
}

}  // namespace ops
}  // namespace ompq
