#include "cuda/backend.h"

#include <cuda_runtime.h>

#include "absl/strings/str_cat.h"

namespace ompq::cuda {

int register_backend(std::string* status) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    *status = absl::StrCat(cudaGetErrorName(err), ": ", cudaGetErrorString(err));
    cudaGetLastError();  // clear the sticky error so later queries start clean
    return 0;
  }
  if (count == 0) {
    *status = "no CUDA devices";
    return 0;
  }
  return count;
}

}  // namespace ompq::cuda
