// Which GPUs this build's kernels can run on. The build carries code for the architectures of
// OMPQ_CUDA_ARCHS (machine code plus PTX, which the driver can compile for newer GPUs), so a
// device is usable when its compute capability is at least the lowest of them.
#pragma once

#include <string>

namespace ompq::cuda {

// The lowest compiled architecture as 10 * major + minor (90 for sm_90).
int min_compiled_arch();
// "sm_90" (or "sm_80, sm_90" ...).
std::string compiled_arch_names();

}  // namespace ompq::cuda
