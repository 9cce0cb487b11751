// ompq::init(): call once at the start of every program (apps, tests, benchmarks) before any op.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/device.h"

namespace ompq {

struct RuntimeInfo {
  bool cuda_built = false;    // the CUDA backend was compiled in
  int cuda_device_count = 0;  // usable GPUs (0 when the driver or device is missing)
  std::string cuda_status;    // why CUDA is not usable, when it is not
};

// Registers the CPU kernels and, when built and a GPU is usable, the CUDA backend. Idempotent and
// thread-safe. When CUDA is built but unusable, prints one line saying so and runs on CPU.
const RuntimeInfo& init();

// The result of init() (calls it when needed).
const RuntimeInfo& runtime_info();
bool cuda_available();

// The device a --device flag names, checked against what this process can use: "cpu", "cuda:N"
// (N below the number of usable GPUs), or "cuda", which takes GPU $LOCAL_RANK when that variable is
// set (one process per GPU started by a launcher that exports it, e.g. torchrun-style scripts) and
// GPU 0 otherwise. MPI ranks of ompq_train pick their GPU from the MPI node-local rank instead.
// `flag` names the flag in the error messages.
absl::StatusOr<Device> usable_device(absl::string_view text, absl::string_view flag = "--device");

// Makes `device` the calling thread's current GPU for the rest of the run, so that CUDA work that
// names no device, and guards that find no context to go back to, stay on it instead of creating
// a context on GPU 0 in every process. Call it once the run's device is final (for MPI ranks,
// after picking the local rank's GPU). Nothing to do for the CPU; an error when `device` is not a
// usable GPU.
absl::Status use_device(const Device& device);

}  // namespace ompq
