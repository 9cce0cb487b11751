#include "runtime/init.h"

#include <cstdio>
#include <mutex>

#include "core/cpu/register.h"
#if OMPQ_WITH_CUDA
#include "cuda/backend.h"
#endif

namespace ompq {
namespace {

RuntimeInfo initialize() {
  RuntimeInfo info;
  cpu::register_all_kernels();
#if OMPQ_WITH_CUDA
  info.cuda_built = true;
  info.cuda_device_count = cuda::register_backend(&info.cuda_status);
  if (info.cuda_device_count == 0) {
    std::fprintf(stderr, "ompq: CUDA backend built but no GPU is usable (%s); running on CPU\n",
                 info.cuda_status.c_str());
  }
#else
  info.cuda_status = "built without CUDA";
#endif
  return info;
}

}  // namespace

const RuntimeInfo& init() {
  static const RuntimeInfo info = initialize();
  return info;
}

const RuntimeInfo& runtime_info() { return init(); }

bool cuda_available() { return init().cuda_device_count > 0; }

}  // namespace ompq
