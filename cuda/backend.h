// The CUDA backend's entry point, called by ompq::init() only.
#pragma once

#include <string>

namespace ompq::cuda {

// When a usable GPU exists: installs the device allocator and registers every CUDA kernel into
// core's dispatch tables, then returns the number of devices. Otherwise returns 0 and says why in
// *status, leaving the CPU backend alone.
int register_backend(std::string* status);

}  // namespace ompq::cuda
