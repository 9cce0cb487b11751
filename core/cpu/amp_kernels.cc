// CPU unscale/found-inf of loss scaling: one vectorized pass over a dense gradient.
#include <atomic>

#include "core/cpu/register.h"
#include "core/ops/amp.h"
#include "core/ops/amp_math.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

constexpr int64_t kGrain = 16384;

// g[i] *= inv_scale over the numel elements of a dense gradient (memory order does not matter);
// a chunk that meets inf or NaN raises the shared flag.
template <typename T>
void unscale_loop(T* g, int64_t n, T inv_scale, std::atomic<bool>* non_finite) {
  parallel_for(0, n, kGrain, [&, g, inv_scale](int64_t lo, int64_t hi) {
    T* __restrict__ gp = g;
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (int64_t i = lo; i < hi; ++i) {
      bad |= !is_finite_value(gp[i]);
      gp[i] *= inv_scale;
    }
    if (bad) non_finite->store(true, std::memory_order_relaxed);
  });
}

void unscale_grad_kernel(const Tensor& grad, double inv_scale, const Tensor& found_inf) {
  std::atomic<bool> non_finite{false};
  OMPQ_DISPATCH_FLOATING(grad.dtype(), "unscale_grads_", [&] {
    unscale_loop(static_cast<scalar_t*>(grad.data_ptr()), grad.numel(),
                 static_cast<scalar_t>(inv_scale), &non_finite);
  });
  if (non_finite.load()) found_inf.data<float>()[0] = 1.0f;
}

}  // namespace

void register_amp_kernels() {
  unscale_grad_stub.register_kernel(DeviceType::kCPU, unscale_grad_kernel);
}

}  // namespace ompq::cpu
