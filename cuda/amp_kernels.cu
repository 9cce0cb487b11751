// CUDA unscale/found-inf of loss scaling: one grid-stride pass over a dense gradient; a thread
// that meets inf or NaN writes 1 into found_inf (every writer stores the same value, so no atomic
// is needed and the host reads the flag once per step).
#include "core/ops/amp.h"
#include "core/ops/amp_math.h"
#include "cuda/launch.cuh"
#include "cuda/register.h"

namespace ompq::cuda {
namespace {

template <typename T>
struct UnscaleOp {
  T* grad;
  T inv_scale;
  float* found_inf;
  template <typename index_t>
  __device__ void operator()(index_t i, const index_t*) const {
    const T g = grad[i];
    if (!is_finite_value(g)) *found_inf = 1.0f;
    grad[i] = g * inv_scale;
  }
};

void unscale_grad_kernel(const Tensor& grad, double inv_scale, const Tensor& found_inf) {
  OMPQ_DISPATCH_FLOATING(grad.dtype(), "unscale_grads_", [&] {
    launch_contiguous(grad.numel(), grad.device().index,
                      UnscaleOp<scalar_t>{static_cast<scalar_t*>(grad.data_ptr()),
                                          static_cast<scalar_t>(inv_scale),
                                          static_cast<float*>(found_inf.data_ptr())});
  });
}

}  // namespace

void register_amp_kernels() {
  unscale_grad_stub.register_kernel(DeviceType::kCUDA, unscale_grad_kernel);
}

}  // namespace ompq::cuda
