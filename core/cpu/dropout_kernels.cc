// CPU dropout: every element's factor is drawn independently from its Philox stream position, so
// the threads split the elements freely and the mask does not depend on the thread count.
#include "core/cpu/register.h"
#include "core/ops/dropout.h"
#include "core/ops/dropout_math.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

// The loop runs over Philox counters (position / 4), each giving four positions' words.
template <typename T>
void apply_dropout(const Tensor& out, const Tensor& in, double p, uint64_t seed,
                   uint64_t stream_start) {
  const T* src = static_cast<const T*>(in.data_ptr());
  T* dst = static_cast<T*>(out.data_ptr());
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
  const uint64_t end = stream_start + static_cast<uint64_t>(in.numel());
  const uint64_t first_counter = stream_start / 4, last_counter = (end - 1) / 4;
  parallel_for(
      0, static_cast<int64_t>(last_counter - first_counter + 1), 1024, [&](int64_t lo, int64_t hi) {
        for (int64_t c = lo; c < hi; ++c) {
          dropout_counter(dst, src, first_counter + c, seed, stream_start, end, p, keep_scale);
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
