// CUDA fused optimizer steps: one thread per element reads the parameter, its gradient and its
// state once and writes them back once, with core/ops/optim_math.h's per-element updates and the
// coefficients computed on the host in double exactly as for the CPU kernel.
#include "core/ops/optim.h"
#include "cuda/launch.cuh"
#include "cuda/register.h"

namespace ompq::cuda {
namespace {

template <typename T>
struct SgdOp {
  T* param;
  const T* grad;
  T* momentum_buffer;  // null when momentum is 0
  SgdCoefficients<T> c;
  template <typename index_t>
  __device__ void operator()(index_t i, const index_t*) const {
    sgd_update(param + i, grad[i], momentum_buffer ? momentum_buffer + i : nullptr, c);
  }
};

template <typename T>
struct AdamOp {
  T* param;
  const T* grad;
  T* exp_avg;
  T* exp_avg_sq;
  AdamCoefficients<T> c;
  template <typename index_t>
  __device__ void operator()(index_t i, const index_t*) const {
    adam_update(param + i, grad[i], exp_avg + i, exp_avg_sq + i, c);
  }
};

void sgd_step_kernel(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                     const SgdOptions& options, bool first_step) {
  OMPQ_DISPATCH_FLOATING(param.dtype(), "sgd_step_", [&] {
    launch_contiguous(
        param.numel(), param.device().index,
        SgdOp<scalar_t>{param.data<scalar_t>(), grad.data<scalar_t>(),
                        momentum_buffer.defined() ? momentum_buffer.data<scalar_t>() : nullptr,
                        sgd_coefficients<scalar_t>(options, first_step)});
  });
}

void adam_step_kernel(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                      const Tensor& exp_avg_sq, const AdamOptions& options, int64_t step) {
  OMPQ_DISPATCH_FLOATING(param.dtype(), "adam_step_", [&] {
    launch_contiguous(
        param.numel(), param.device().index,
        AdamOp<scalar_t>{param.data<scalar_t>(), grad.data<scalar_t>(), exp_avg.data<scalar_t>(),
                         exp_avg_sq.data<scalar_t>(), adam_coefficients<scalar_t>(options, step)});
  });
}

}  // namespace

void register_optim_kernels() {
  sgd_step_stub.register_kernel(DeviceType::kCUDA, sgd_step_kernel);
  adam_step_stub.register_kernel(DeviceType::kCUDA, adam_step_kernel);
}

}  // namespace ompq::cuda
