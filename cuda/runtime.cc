#include "cuda/runtime.h"

#include <cudaTypedefs.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ompq::cuda {

std::string cuda_error_text(cudaError_t err) {
  return absl::StrCat(cudaGetErrorName(err), ": ", cudaGetErrorString(err));
}

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  cudaGetLastError();  // clear it: the Error carries it now
  throw Error(
      absl::StrCat("CUDA call ", call, " failed at ", file, ":", line, ": ", cuda_error_text(err)));
}

namespace {

struct DeviceCount {
  int count = 0;
  std::string reason;
};

// The count cannot change while the process runs, and the failing query is slow (it tries to load
// the driver), so it is asked once.
const DeviceCount& query_device_count() {
  static const DeviceCount result = [] {
    DeviceCount r;
    cudaError_t err = cudaGetDeviceCount(&r.count);
    if (err != cudaSuccess) {
      cudaGetLastError();  // a failed query must not be reported by the next unrelated check
      r.count = 0;
      r.reason = cuda_error_text(err);
    } else if (r.count == 0) {
      r.reason = "no CUDA devices";
    }
    return r;
  }();
  return result;
}

// Per-device state created on first use. Never destroyed: the CUDA runtime may already be torn
// down when static destructors run, and destroying a stream then fails.
struct PerDevice {
  std::once_flag properties_once;
  cudaDeviceProp properties{};
  std::once_flag stream_once;  // separate: a stream creates a context, properties do not
  std::unique_ptr<Stream> stream;
};

std::atomic<int> g_first_device_in_use{-1};

PerDevice& per_device(int device) {
  check_device_index(device, "CUDA device");
  static std::vector<PerDevice>* table = new std::vector<PerDevice>(device_count());
  return (*table)[device];
}

}  // namespace

int device_count() { return query_device_count().count; }

std::string unavailable_reason() { return query_device_count().reason; }

int current_device() {
  int device = 0;
  OMPQ_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

void set_device(int device) {
  check_device_index(device, "set_device");
  OMPQ_CUDA_CHECK(cudaSetDevice(device));
}

void check_device_index(int device, const char* what) {
  const int count = device_count();
  OMPQ_CHECK(device >= 0 && device < count, what, ": cuda:", device, " does not exist (",
             count == 0 ? absl::StrCat("no usable GPU: ", unavailable_reason())
                        : absl::StrCat(count, " CUDA device", count == 1 ? "" : "s"),
             ")");
}

namespace {

// The two driver calls has_context() needs, found through the runtime so that ompq does not
// link the driver library itself; null where the driver lacks them.
struct PrimaryContextQuery {
  PFN_cuDeviceGet_v2000 device_handle = nullptr;
  PFN_cuDevicePrimaryCtxGetState_v7000 state = nullptr;
};

void* driver_function(const char* name, unsigned version) {
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  if (cudaGetDriverEntryPointByVersion(name, &fn, version, cudaEnableDefault, &found) !=
          cudaSuccess ||
      found != cudaDriverEntryPointSuccess) {
    cudaGetLastError();  // a missing symbol is an answer, not an error for the next check
    return nullptr;
  }
  return fn;
}

const PrimaryContextQuery& primary_context_query() {
  static const PrimaryContextQuery query = [] {
    PrimaryContextQuery q;
    q.device_handle = reinterpret_cast<PFN_cuDeviceGet_v2000>(driver_function("cuDeviceGet", 2000));
    q.state = reinterpret_cast<PFN_cuDevicePrimaryCtxGetState_v7000>(
        driver_function("cuDevicePrimaryCtxGetState", 7000));
    return q;
  }();
  return query;
}

}  // namespace

bool has_context(int device) {
  const PrimaryContextQuery& query = primary_context_query();
  if (query.device_handle == nullptr || query.state == nullptr) return true;
  CUdevice handle = 0;
  unsigned flags = 0;
  int active = 0;
  if (query.device_handle(&handle, device) != CUDA_SUCCESS ||
      query.state(handle, &flags, &active) != CUDA_SUCCESS) {
    return true;
  }
  return active != 0;
}

bool guard_restores(int previous, int entered, bool previous_has_context) {
  return entered != previous && previous_has_context;
}

DeviceGuard::DeviceGuard(int device) : previous_(current_device()) {
  if (device == previous_) return;
  restore_ = guard_restores(previous_, device, has_context(previous_));
  set_device(device);
}

DeviceGuard::~DeviceGuard() {
  // Cannot throw from a destructor; restoring a device whose context exists cannot fail unless
  // that context is already broken, which the next checked call will report.
  if (restore_) cudaSetDevice(previous_);
}

const cudaDeviceProp& device_properties(int device) {
  PerDevice& entry = per_device(device);
  std::call_once(entry.properties_once,
                 [&] { OMPQ_CUDA_CHECK(cudaGetDeviceProperties(&entry.properties, device)); });
  return entry.properties;
}

std::string device_summary(int device) {
  const cudaDeviceProp& p = device_properties(device);
  return absl::StrCat(p.name, " (sm_", p.major, p.minor, ", ", p.multiProcessorCount, " SMs, ",
                      format_bytes(p.totalGlobalMem), ")");
}

Stream::Stream(int device) : device_(device) {
  DeviceGuard guard(device);
  // Non-blocking: our stream must not serialize with libraries that use the legacy NULL stream.
  OMPQ_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

Stream::~Stream() {
  if (stream_ != nullptr) cudaStreamDestroy(stream_);  // no throwing from a destructor
}

void Stream::synchronize() const { OMPQ_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

Event::Event(int device) : device_(device) {
  DeviceGuard guard(device);
  OMPQ_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
}

Event::~Event() {
  if (event_ != nullptr) cudaEventDestroy(event_);  // no throwing from a destructor
}

void Event::record(cudaStream_t stream) {
  DeviceGuard guard(device_);
  OMPQ_CUDA_CHECK(cudaEventRecord(event_, stream));
}

bool Event::query() const {
  const cudaError_t err = cudaEventQuery(event_);
  if (err == cudaErrorNotReady) {
    cudaGetLastError();  // not an error: clear it so that the next check does not see it
    return false;
  }
  OMPQ_CUDA_CHECK(err);
  return true;
}

void Event::synchronize() const { OMPQ_CUDA_CHECK(cudaEventSynchronize(event_)); }

Stream& default_stream(int device) {
  PerDevice& entry = per_device(device);
  std::call_once(entry.stream_once, [&] {
    entry.stream = std::make_unique<Stream>(device);
    int none = -1;
    g_first_device_in_use.compare_exchange_strong(none, device);
  });
  return *entry.stream;
}

int first_device_in_use() { return g_first_device_in_use.load(); }

void synchronize(int device) { default_stream(device).synchronize(); }

std::string format_bytes(size_t nbytes) {
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (nbytes < 1024) return absl::StrCat(nbytes, " B");
  double value = static_cast<double>(nbytes) / 1024.0;
  int unit = 0;
  while (value >= 1024.0 && unit < 3) {
    value /= 1024.0;
    ++unit;
  }
  return absl::StrFormat("%.2f %s", value, kUnits[unit]);
}

}  // namespace ompq::cuda
