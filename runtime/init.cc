#include "runtime/init.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/cpu/register.h"
#include "core/error.h"
#if OMPQ_WITH_CUDA
#include "cuda/backend.h"
#include "cuda/runtime.h"
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

// OK for the CPU and for a GPU below the usable count; otherwise why not, after `what`.
absl::Status check_usable_gpu(const Device& device, absl::string_view what) {
  if (!device.is_cuda()) return absl::OkStatus();
  const RuntimeInfo& info = runtime_info();
  if (info.cuda_device_count == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " but no GPU is usable (", info.cuda_status, ")"));
  }
  if (device.index < 0 || device.index >= info.cuda_device_count) {
    return absl::InvalidArgumentError(absl::StrCat(what, " names GPU ", device.index, " but only ",
                                                   info.cuda_device_count,
                                                   " GPU(s) are usable (CUDA_VISIBLE_DEVICES)"));
  }
  return absl::OkStatus();
}

}  // namespace

const RuntimeInfo& init() {
  static const RuntimeInfo info = initialize();
  return info;
}

const RuntimeInfo& runtime_info() { return init(); }

bool cuda_available() { return init().cuda_device_count > 0; }

absl::StatusOr<Device> usable_device(absl::string_view text, absl::string_view flag) {
  std::string spelled(text);
  if (text == "cuda") {
    const char* local_rank = std::getenv("LOCAL_RANK");
    int index = 0;
    if (local_rank != nullptr && (!absl::SimpleAtoi(local_rank, &index) || index < 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, "=cuda takes its GPU from LOCAL_RANK, but LOCAL_RANK=\"", local_rank,
                       "\" is not a non-negative integer"));
    }
    spelled = absl::StrCat("cuda:", index);
  }
  absl::StatusOr<Device> device = parse_device(spelled);
  if (!device.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", device.status().message()));
  }
  OMPQ_RETURN_IF_ERROR(check_usable_gpu(*device, absl::StrCat(flag, "=", text)));
  return device;
}

absl::Status use_device(const Device& device) {
  OMPQ_RETURN_IF_ERROR(check_usable_gpu(device, absl::StrCat("use_device(", device.str(), ")")));
#if OMPQ_WITH_CUDA
  if (device.is_cuda()) {
    try {
      cuda::set_device(device.index);
    } catch (const Error& e) {
      return absl::InternalError(e.what());
    }
  }
#endif
  return absl::OkStatus();
}

}  // namespace ompq
