// CPU random fill: the same Philox stream as the CUDA kernel, computed into a contiguous buffer in
// logical order and copied to the destination's layout.
#include "core/cpu/register.h"
#include "core/ops/copy.h"
#include "core/parallel.h"
#include "core/philox.h"
#include "core/random.h"

namespace ompq::cpu {
namespace {

void random_kernel(const Tensor& dst, Distribution dist, double a, double b, uint64_t seed,
                   uint64_t stream_start) {
  if (dst.dtype() != DType::kF32 && dst.dtype() != DType::kF64) {  // bf16/f16: draw in f32
    Tensor f = Tensor::empty(dst.shape(), DType::kF32);
    random_kernel(f, dist, a, b, seed, stream_start);
    ops::copy_(dst, f);
    return;
  }
  Tensor buffer = dst.is_contiguous() ? dst : Tensor::empty(dst.shape(), dst.dtype());
  OMPQ_DISPATCH_FLOATING(dst.dtype(), "random_", [&] {
    scalar_t* out = static_cast<scalar_t*>(buffer.data_ptr());
    parallel_for(0, dst.numel(), 4096, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        float r = dist == Distribution::kNormal ? philox_normal(seed, stream_start + i)
                                                : philox_uniform(seed, stream_start + i);
        out[i] = static_cast<scalar_t>(random_affine(a, r, b));
      }
    });
  });
  if (!buffer.same(dst)) ops::copy_(dst, buffer);
}

}  // namespace

void register_random_kernels() { random_stub.register_kernel(DeviceType::kCPU, random_kernel); }

}  // namespace ompq::cpu
