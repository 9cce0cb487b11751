// CUDA dropout: one thread per Philox counter (four stream positions), applying the mask of
// core/ops/dropout_math.h that the CPU kernel applies too, so that both devices draw the same mask
// for the same (seed, stream start, p) bit for bit, whatever the tensor's size or offset.
#include "core/ops/dropout.h"
#include "core/ops/dropout_math.h"
#include "cuda/launch.cuh"
#include "cuda/register.h"

namespace ompq::cuda {
namespace {

// Thread t applies the mask of counter first_counter + t to contiguous src/dst.
template <typename T>
struct DropoutOp {
  T* dst;
  const T* src;
  uint64_t first_counter, seed, start, end;
  double p;
  T keep_scale;
  template <typename index_t>
  __device__ void operator()(index_t t, const index_t*) const {
    dropout_counter(dst, src, first_counter + static_cast<uint64_t>(t), seed, start, end, p,
                    keep_scale);
  }
};

void dropout_kernel(const Tensor& out, const Tensor& in, double p, uint64_t seed,
                    uint64_t stream_start) {
  const uint64_t end = stream_start + static_cast<uint64_t>(in.numel());
  const uint64_t first_counter = stream_start / 4, last_counter = (end - 1) / 4;
  OMPQ_DISPATCH_FLOATING(in.dtype(), "dropout", [&] {
    launch_contiguous(
        static_cast<int64_t>(last_counter - first_counter + 1), in.device().index,
        DropoutOp<scalar_t>{static_cast<scalar_t*>(out.data_ptr()),
                            static_cast<const scalar_t*>(in.data_ptr()), first_counter, seed,
                            stream_start, end, p, static_cast<scalar_t>(1.0 / (1.0 - p))});
  });
}

}  // namespace

void register_dropout_kernels() { dropout_stub.register_kernel(DeviceType::kCUDA, dropout_kernel); }

}  // namespace ompq::cuda
