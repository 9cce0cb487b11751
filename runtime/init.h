// ompq::init(): call once at the start of every program (apps, tests, benchmarks) before any op.
#pragma once

#include <string>

namespace ompq {

struct RuntimeInfo {
  bool cuda_built = false;      // the CUDA backend was compiled in
  int cuda_device_count = 0;    // usable GPUs (0 when the driver or device is missing)
  std::string cuda_status;      // why CUDA is not usable, when it is not
};

// Registers the CPU kernels and, when built and a GPU is usable, the CUDA backend. Idempotent and
// thread-safe. When CUDA is built but unusable, prints one line saying so and runs on CPU.
const RuntimeInfo& init();

// The result of init() (calls it when needed).
const RuntimeInfo& runtime_info();
bool cuda_available();

}  // namespace ompq
