// copy_ and fill_ for CUDA tensors: routes a copy between host and devices. Only dense, same-dtype
// bytes cross the bus; strides, broadcasting and dtype conversion are resolved on the GPU side (the
// CPU kernel stages a non-contiguous host tensor into a contiguous one first).
#include "core/ops/copy.h"

#include <cuda_runtime.h>

#include "cuda/copy_kernels.h"
#include "cuda/host_allocator.h"
#include "cuda/register.h"
#include "cuda/runtime.h"

namespace ompq::cuda {
namespace {

// t without its broadcast dims: size 1 wherever the stride is 0, so that an expanded tensor
// crosses the bus once and is expanded again on the other side.
Tensor drop_broadcast(const Tensor& t) {
  Shape shape = t.shape();
  for (size_t d = 0; d < shape.size(); ++d) {
    if (t.strides()[d] == 0) shape[d] = 1;
  }
  return as_strided(t, shape, t.strides(), t.offset());
}

// Copies between tensors on one device (CPU kernel or CUDA kernel).
void copy_within_device(const Tensor& dst, const Tensor& src) {
  if (dst.device().is_cpu()) {
    copy_stub(Device::cpu(), dst, src);
  } else if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    DeviceGuard guard(dst.device().index);
    OMPQ_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), dst.nbytes(),
                                    cudaMemcpyDeviceToDevice,
                                    default_stream(dst.device().index).get()));
  } else {
    launch_copy(dst, src);
  }
}

// `t` itself when it is contiguous in `dtype`, else a contiguous copy of it in `dtype` on its
// own device.
Tensor dense_on_own_device(const Tensor& t, DType dtype) {
  if (t.is_contiguous() && t.dtype() == dtype) return t;
  Tensor out = Tensor::empty(t.shape(), dtype, t.device());
  copy_within_device(out, t);
  return out;
}

// Raw bytes between two contiguous tensors of one dtype and shape on different devices. Returns
// when `to` may be read by the host (D2H) or by later work on its device's stream (H2D, peer), and
// `from` may be freed: a pageable host source is staged by the driver before cudaMemcpyAsync
// returns (CPU tensors come from the pageable CPU pool); a page-locked one (the pinned allocator's,
// cuda/host_allocator.h) is read while the copy runs, so the copy is recorded on its block, which
// is not handed out again before the copy is done.
void copy_bytes(const Tensor& to, const Tensor& from) {
  const size_t nbytes = to.nbytes();
  if (to.device().is_cuda() && from.device().is_cpu()) {
    const int device = to.device().index;
    DeviceGuard guard(device);
    const cudaStream_t stream = default_stream(device).get();
    OMPQ_CUDA_CHECK(
        cudaMemcpyAsync(to.data_ptr(), from.data_ptr(), nbytes, cudaMemcpyHostToDevice, stream));
    pinned_host_allocator()->record_use(from.data_ptr(), stream, device);
  } else if (to.device().is_cpu()) {
    const int device = from.device().index;
    DeviceGuard guard(device);
    OMPQ_CUDA_CHECK(cudaMemcpyAsync(to.data_ptr(), from.data_ptr(), nbytes, cudaMemcpyDeviceToHost,
                                    default_stream(device).get()));
    synchronize(device);
  } else {
    // Peer copy: `from` was written on its device's stream and may be reused by it as soon as we
    // return, so wait on both sides (copies between GPUs are rare; NCCL moves gradients).
    const int src_device = from.device().index, dst_device = to.device().index;
    synchronize(src_device);
    DeviceGuard guard(dst_device);
    OMPQ_CUDA_CHECK(cudaMemcpyPeerAsync(to.data_ptr(), dst_device, from.data_ptr(), src_device,
                                        nbytes, default_stream(dst_device).get()));
    synchronize(dst_device);
  }
}

// dst and src of one shape (src possibly broadcast), on different devices: src is made dense on
// its own device (converted to dst's dtype when that side is the GPU, so the CPU does no
// conversion), crosses the bus, and is copied into dst's layout on dst's device.
void copy_across_devices(const Tensor& dst, const Tensor& src) {
  const Tensor compact = drop_broadcast(src);
  const DType wire_dtype = src.device().is_cuda() ? dst.dtype() : src.dtype();
  const Tensor from = dense_on_own_device(compact, wire_dtype);
  const bool direct =
      compact.shape() == dst.shape() && dst.is_contiguous() && dst.dtype() == wire_dtype;
  const Tensor to = direct ? dst : Tensor::empty(compact.shape(), wire_dtype, dst.device());
  copy_bytes(to, from);
  if (!direct) copy_within_device(dst, to.expand(dst.shape()));
}

void copy_kernel(const Tensor& dst, const Tensor& src) {
  if (dst.device() == src.device()) {
    copy_within_device(dst, src);
  } else {
    copy_across_devices(dst, src);
  }
}

void fill_kernel(const Tensor& dst, double value) { launch_fill(dst, value); }

}  // namespace

void register_copy_kernels() {
  copy_stub.register_kernel(DeviceType::kCUDA, copy_kernel);
  fill_stub.register_kernel(DeviceType::kCUDA, fill_kernel);
}

}  // namespace ompq::cuda
