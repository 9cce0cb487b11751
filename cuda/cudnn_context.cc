#include "cuda/cudnn_context.h"

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cuda/runtime.h"

namespace ompq::cuda {

void throw_cudnn_error(cudnnStatus_t status, const char* call, const char* file, int line) {
  throw Error(absl::StrCat("cuDNN call ", call, " failed at ", file, ":", line, ": ",
                           cudnnGetErrorString(status)));
}

CudnnDevice& cudnn_device(int device) {
  check_device_index(device, "cuDNN");
  struct Slot {
    std::once_flag once;
    CudnnDevice state;
  };
  // Never destroyed: the CUDA runtime may be gone when static destructors run.
  static std::vector<Slot>* slots = new std::vector<Slot>(device_count());
  Slot& slot = (*slots)[device];
  std::call_once(slot.once, [&] {
    DeviceGuard guard(device);
    OMPQ_CUDNN_CHECK(cudnnCreate(&slot.state.handle));
    OMPQ_CUDNN_CHECK(cudnnSetStream(slot.state.handle, default_stream(device).get()));
  });
  return slot.state;
}

cudnnDataType_t cudnn_data_type(DType dtype, const char* op) {
  switch (dtype) {
    case DType::kF32:
      return CUDNN_DATA_FLOAT;
    case DType::kF64:
      return CUDNN_DATA_DOUBLE;
    case DType::kBF16:
      return CUDNN_DATA_BFLOAT16;
    case DType::kF16:
      return CUDNN_DATA_HALF;
    default:
      throw Error(absl::StrCat(op, " on CUDA: unsupported dtype ", dtype_name(dtype),
                               " (expected f32, f64, bf16 or f16)"));
  }
}

}  // namespace ompq::cuda
