// The resources of the kernels compiled into a host object file: nvcc embeds each translation
// unit's device code as a fat binary (section .nv_fatbin) holding one ELF "cubin" per target
// architecture; the cubin records each kernel's registers, static shared memory and
// __launch_bounds__ (what cuobjdump --dump-resource-usage prints, read here without the tool).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ompq::launch_check {

struct CompiledKernel {
  std::string object;  // the host object file it was read from
  std::string symbol;  // mangled name
  std::string name;    // qualified function name (see function_name())
  int arch = 0;        // 90 for sm_90
  int registers = 0;   // per thread
  int64_t static_shared_bytes = 0;
  int64_t max_threads = 0;  // __launch_bounds__'s block size, 0 when the kernel has none
};

// The kernels of every cubin in the host object `path`. Throws std::runtime_error naming the file
// and what was expected when the file or its device code is not what nvcc writes.
std::vector<CompiledKernel> read_kernels(const std::string& path);

// "ompq::cuda::softmax_rows_kernel" for the demangled "void ompq::cuda::(anonymous
// namespace)::softmax_rows_kernel<true, float>(float*, float const*, long, long)": the function's
// name without return type, anonymous namespaces, template arguments and parameters.
std::string function_name(const std::string& demangled);

}  // namespace ompq::launch_check
