// The CUDA runtime as the rest of cuda/ sees it: error checking that turns a cudaError_t into an
// ompq::Error, device selection (RAII guard), device properties, and one stream per device on
// which every ompq kernel and copy is issued.
//
// Why one stream per device: the caching allocator may hand a freed block to the next allocation
// at once, which is only safe when every use of the block is ordered on the same stream (PyTorch's
// rule). Work that runs elsewhere must synchronize with default_stream() first.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "core/error.h"

namespace ompq::cuda {

// Throws an Error naming the failed call, where it was made, and CUDA's name and text for `err`.
// Clears the runtime's last error first, so that a later check does not report it again.
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);

// "cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version".
std::string cuda_error_text(cudaError_t err);

}  // namespace ompq::cuda

// OMPQ_CUDA_CHECK(cudaMalloc(&p, n)) throws ompq::Error unless the call returned cudaSuccess.
#define OMPQ_CUDA_CHECK(call)                                                    \
  do {                                                                           \
    cudaError_t ompq_cuda_err_ = (call);                                         \
    if (ompq_cuda_err_ != cudaSuccess)                                           \
      ::ompq::cuda::throw_cuda_error(ompq_cuda_err_, #call, __FILE__, __LINE__); \
  } while (0)

// After a <<<...>>> launch: reports bad launch configurations (they are not returned by the
// launch itself). Errors raised while the kernel runs surface at the next synchronizing call.
#define OMPQ_CUDA_CHECK_LAUNCH() OMPQ_CUDA_CHECK(cudaGetLastError())

namespace ompq::cuda {

// Number of CUDA devices, or 0 when the driver or the devices are missing (never throws).
int device_count();
// Why device_count() is 0 (empty when it is not): the CUDA error or "no CUDA devices".
std::string unavailable_reason();

int current_device();
void set_device(int device);
// Throws an Error naming `what` unless 0 <= device < device_count().
void check_device_index(int device, const char* what);

// Whether this process holds `device`'s primary context (the driver's answer; creates none).
// True when the driver cannot be asked, which keeps DeviceGuard restoring as it always did.
bool has_context(int device);

// Whether a DeviceGuard that switched from `previous` to `entered` switches back on exit: only
// when `previous` has a context. A thread that never used CUDA reports device 0 as current with
// no context on it, and making device 0 current creates its context (about 0.5 GB, and a failure
// when another process holds that GPU in exclusive-process mode): such a thread keeps `entered`.
bool guard_restores(int previous, int entered, bool previous_has_context);

// Makes `device` current for a scope and, where guard_restores() says so, restores the previous
// device on exit.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_;
  bool restore_ = false;
};

// Properties queried once per device (the query costs milliseconds).
const cudaDeviceProp& device_properties(int device);
// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)".
std::string device_summary(int device);

// An owned stream on one device; destroyed with the object.
class Stream {
 public:
  explicit Stream(int device);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t get() const { return stream_; }
  int device() const { return device_; }
  void synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
  int device_;
};

// An event of one device, without timing: record() places it on a stream of that device after the
// work queued so far; query() says whether the stream has run past it (throws Error when the
// stream failed); synchronize() waits for that.
class Event {
 public:
  explicit Event(int device);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void record(cudaStream_t stream);
  bool query() const;
  void synchronize() const;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
  int device_;
};

// The stream every ompq kernel and copy on `device` runs on, created on first use. It does not
// synchronize with the legacy NULL stream, so never mix it with synchronous cudaMemcpy.
Stream& default_stream(int device);
// The first device whose default stream was created (a device this process computes on, so its
// context exists), or -1 before any. Host-side CUDA calls that need some context (pinned
// allocations from data loader threads) use it rather than creating one on device 0.
int first_device_in_use();
// Waits until all work queued on `device`'s default stream is done.
void synchronize(int device);

// Human-readable byte count: "512 B", "3.50 MiB", "79.10 GiB".
std::string format_bytes(size_t nbytes);

}  // namespace ompq::cuda
