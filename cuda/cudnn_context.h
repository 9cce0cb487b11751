// cuDNN plumbing shared by the cuDNN-backed ops: status checking, one handle per device (bound to
// the device's default stream, cuda/runtime.h), and owning wrappers of the descriptors.
#pragma once

#include <cudnn.h>

#include <mutex>

#include "core/dtype.h"
#include "core/error.h"

namespace ompq::cuda {

[[noreturn]] void throw_cudnn_error(cudnnStatus_t status, const char* call, const char* file,
                                    int line);

}  // namespace ompq::cuda

// OMPQ_CUDNN_CHECK(cudnnCreate(&h)) throws ompq::Error unless the call returned success.
#define OMPQ_CUDNN_CHECK(call)                                                        \
  do {                                                                                \
    cudnnStatus_t ompq_cudnn_status_ = (call);                                        \
    if (ompq_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                   \
      ::ompq::cuda::throw_cudnn_error(ompq_cudnn_status_, #call, __FILE__, __LINE__); \
  } while (0)

namespace ompq::cuda {

// The handle of one device. cuDNN handles are not thread-safe, and the plans the ops cache hold
// descriptors that a call may modify (math type): everything that uses the handle or a cached
// plan holds `mutex`. cuDNN calls only enqueue work, so the lock is held for microseconds.
struct CudnnDevice {
  std::mutex mutex;
  cudnnHandle_t handle = nullptr;
};
// Created on first use (with the device's default stream) and never destroyed.
CudnnDevice& cudnn_device(int device);

// cuDNN's element type for an ompq floating dtype (f32, f64, bf16, f16); throws for others.
cudnnDataType_t cudnn_data_type(DType dtype, const char* op);

// Owns a cuDNN descriptor: created in the constructor, destroyed with the object.
template <typename T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class CudnnDescriptor {
 public:
  CudnnDescriptor() { OMPQ_CUDNN_CHECK(Create(&desc_)); }
  ~CudnnDescriptor() { Destroy(desc_); }  // cannot fail for a descriptor we created
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
  T get() const { return desc_; }

 private:
  T desc_ = nullptr;
};

using TensorDescriptor = CudnnDescriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor,
                                         cudnnDestroyTensorDescriptor>;
using FilterDescriptor = CudnnDescriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor,
                                         cudnnDestroyFilterDescriptor>;
using ConvolutionDescriptor =
    CudnnDescriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor,
                    cudnnDestroyConvolutionDescriptor>;

// The alpha/beta scaling factors of a cuDNN call: double for f64 data, float otherwise.
struct CudnnScale {
  float f;
  double d;
  explicit CudnnScale(double value) : f(static_cast<float>(value)), d(value) {}
  const void* for_type(cudnnDataType_t type) const {
    return type == CUDNN_DATA_DOUBLE ? static_cast<const void*>(&d) : static_cast<const void*>(&f);
  }
};

}  // namespace ompq::cuda
