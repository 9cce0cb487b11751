// CPU fused optimizer steps: one pass over contiguous parameter, gradient and state arrays.
#include "core/cpu/register.h"
#include "core/ops/optim.h"
#include "core/parallel.h"

namespace ompq::cpu {
namespace {

constexpr int64_t kGrain = 16384;

// Each chunk works on local copies of the pointers and coefficients: restrict does not survive a
// lambda capture, and coefficients read through a reference could alias the stores.
template <typename T>
void sgd_step_loop(T* p, const T* g, T* buf, int64_t n, const SgdCoefficients<T>& coefficients) {
  parallel_for(0, n, kGrain, [&, p, g, buf](int64_t lo, int64_t hi) {
    const SgdCoefficients<T> c = coefficients;
    T* __restrict__ pp = p;
    const T* __restrict__ gp = g;
    T* __restrict__ bp = buf;
    if (bp != nullptr) {
#pragma omp simd
      for (int64_t i = lo; i < hi; ++i) sgd_update(pp + i, gp[i], bp + i, c);
    } else {
#pragma omp simd
      for (int64_t i = lo; i < hi; ++i) sgd_update<T>(pp + i, gp[i], nullptr, c);
    }
  });
}

template <typename T>
void adam_step_loop(T* p, const T* g, T* m, T* v, int64_t n,
                    const AdamCoefficients<T>& coefficients) {
  parallel_for(0, n, kGrain, [&, p, g, m, v](int64_t lo, int64_t hi) {
    const AdamCoefficients<T> c = coefficients;
    T* __restrict__ pp = p;
    const T* __restrict__ gp = g;
    T* __restrict__ mp = m;
    T* __restrict__ vp = v;
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) adam_update(pp + i, gp[i], mp + i, vp + i, c);
  });
}

void sgd_step_kernel(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                     const SgdOptions& options, bool first_step) {
  OMPQ_DISPATCH_FLOATING(param.dtype(), "sgd_step_", [&] {
    sgd_step_loop<scalar_t>(param.data<scalar_t>(), grad.data<scalar_t>(),
                            momentum_buffer.defined() ? momentum_buffer.data<scalar_t>() : nullptr,
                            param.numel(), sgd_coefficients<scalar_t>(options, first_step));
  });
}

void adam_step_kernel(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                      const Tensor& exp_avg_sq, const AdamOptions& options, int64_t step) {
  OMPQ_DISPATCH_FLOATING(param.dtype(), "adam_step_", [&] {
    adam_step_loop<scalar_t>(param.data<scalar_t>(), grad.data<scalar_t>(),
                             exp_avg.data<scalar_t>(), exp_avg_sq.data<scalar_t>(), param.numel(),
                             adam_coefficients<scalar_t>(options, step));
  });
}

}  // namespace

void register_optim_kernels() {
  sgd_step_stub.register_kernel(DeviceType::kCPU, sgd_step_kernel);
  adam_step_stub.register_kernel(DeviceType::kCPU, adam_step_kernel);
}

}  // namespace ompq::cpu
