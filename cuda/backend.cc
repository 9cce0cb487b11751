#include "cuda/backend.h"

#include "absl/strings/str_cat.h"
#include "core/allocator.h"
#include "cuda/allocator.h"
#include "cuda/arch.h"
#include "cuda/host_allocator.h"
#include "cuda/nccl_communicator.h"
#include "cuda/register.h"
#include "cuda/runtime.h"

namespace ompq::cuda {
namespace {

// Installed for DeviceType::kCUDA when no GPU is usable, so that creating a CUDA tensor fails with
// the reason rather than with a generic "no allocator".
class UnavailableAllocator final : public Allocator {
 public:
  explicit UnavailableAllocator(std::string reason) : reason_(std::move(reason)) {}
  void* allocate(size_t nbytes, Device device) override {
    throw Error(absl::StrCat("cannot allocate ", nbytes, " bytes on ", device.str(),
                             ": no usable GPU (", reason_, "); tensors must stay on the CPU"));
  }
  void deallocate(void*, size_t, Device) override {}
  void empty_cache() override {}
  AllocatorStats stats() const override { return {}; }

 private:
  std::string reason_;
};

// Why the CUDA backend cannot run here, or "" when it can: every device must be able to run the
// compiled kernels. Reads device properties only, which creates no context on the devices.
std::string unusable_reason() {
  const int count = device_count();
  if (count == 0) return unavailable_reason();
  for (int d = 0; d < count; ++d) {
    const cudaDeviceProp& p = device_properties(d);
    const int arch = 10 * p.major + p.minor;
    if (arch < min_compiled_arch()) {
      return absl::StrCat("cuda:", d, " is ", p.name, " (sm_", arch, ") but ompq was built for ",
                          compiled_arch_names(), "; rebuild with -DOMPQ_CUDA_ARCHS=", arch);
    }
  }
  return "";
}

}  // namespace

int register_backend(std::string* status) {
  std::string reason;
  try {
    reason = unusable_reason();
  } catch (const Error& e) {  // a broken driver must not take the CPU path down with it
    reason = e.what();
  }
  if (!reason.empty()) {
    *status = reason;
    static UnavailableAllocator* unavailable = new UnavailableAllocator(reason);
    set_allocator(DeviceType::kCUDA, unavailable);
    return 0;
  }
  set_allocator(DeviceType::kCUDA, device_allocator());
  set_pinned_allocator(pinned_host_allocator());
  register_copy_kernels();
  register_random_kernels();
  register_elementwise_kernels();
  register_reduce_kernels();
  register_cudnn_conv_kernels();
  register_cublaslt_gemm_kernels();
  register_norm_kernels();
  register_pool_kernels();
  register_softmax_kernels();
  register_optim_kernels();
  register_dropout_kernels();
  register_quant_kernels();
  register_adaround_kernels();
  register_lowbit_kernels();
  register_amp_kernels();
#if OMPQ_WITH_NCCL
  set_gpu_communicator_factory(
      [](Communicator& bootstrap, int gpu) { return make_nccl_communicator(bootstrap, gpu); });
#endif
  return device_count();
}

}  // namespace ompq::cuda
