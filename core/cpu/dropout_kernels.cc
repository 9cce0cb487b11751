// CPU dropout: every element's factor is drawn independently from its Philox stream position, so
// the threads split the elements freely and the mask does not depend on the thread count.
#include "core/cpu/register.h"
#include "core/ops/dropout.h"
#include "core/ops/dropout_math.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

template <typename T>
void apply_dropout(const Tensor& out, const Tensor& in, double p, uint64_t seed,
                   uint64_t stream_start) {
  const T* __restrict__ src = static_cast<const T*>(in.data_ptr());
  T* __restrict__ dst = static_cast<T*>(out.data_ptr());
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
  parallel_for(0, in.numel(), 4096, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      dst[i] = src[i] * dropout_factor(seed, stream_start + i, p, keep_scale);
    }
  });
}

void dropout_kernel(const Tensor& out, const Tensor& in, double p, uint64_t seed,
                    uint64_t stream_start) {
  OMPQ_DISPATCH_FLOATING(in.dtype(), "dropout",
                         [&] { apply_dropout<scalar_t>(out, in, p, seed, stream_start); });
}

}  // namespace

void register_dropout_kernels() { dropout_stub.register_kernel(DeviceType::kCPU, dropout_kernel); }

}  // namespace ompq::cpu
