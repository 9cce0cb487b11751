// Every kernel compiled into ompq_cuda against the launches cuda/launch_table.h says its launcher
// can make, and those against the H100's limits: registers x threads, shared memory, threads per
// block and __launch_bounds__, grid dimensions. Reads the sm_90 code of the objects listed in the
// file given as the first argument (one path a line), so it needs no GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "cuda/launch_table.h"
#include "tests/launch/cubin_reader.h"
#include "tests/temp_dir.h"

namespace ompq::launch_check {
namespace {

using cuda::Dim3;
using cuda::KernelLaunch;

// The H100's (compute capability 9.0) limits on one launch.
struct GpuLimits {
  int64_t threads_per_block = 1024;
  Dim3 block{1024, 1024, 64};
  int64_t registers_per_block = 65536;
  int registers_per_thread = 255;
  int64_t register_unit_per_warp = 256;  // a warp's registers are allocated in units of 256
  // Without cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize), which no launcher
  // calls: a kernel needing more (up to 227 KiB) needs that call and this check taught about it.
  int64_t shared_bytes_per_block = 48 * 1024;
  Dim3 grid{cuda::kMaxGridX, cuda::kMaxGridYZ, cuda::kMaxGridYZ};
};
constexpr GpuLimits kH100;

std::string text(const Dim3& d) {
  return "(" + std::to_string(d.x) + ", " + std::to_string(d.y) + ", " + std::to_string(d.z) + ")";
}

// Registers a block of `threads` holds: whole warps, each rounded up to the allocation unit.
int64_t block_registers(int registers, int64_t threads, const GpuLimits& gpu) {
  const int64_t per_warp = (registers * 32 + gpu.register_unit_per_warp - 1) /
                           gpu.register_unit_per_warp * gpu.register_unit_per_warp;
  return (threads + 31) / 32 * per_warp;
}

// Why `launch` of `kernel` could not run on `gpu`; empty when it can.
std::vector<std::string> launch_problems(const CompiledKernel& kernel, const KernelLaunch& launch,
                                         const GpuLimits& gpu) {
  std::vector<std::string> problems;
  const int64_t threads = launch.block.count();
  if (threads > gpu.threads_per_block || launch.block.x > gpu.block.x ||
      launch.block.y > gpu.block.y || launch.block.z > gpu.block.z) {
    problems.push_back("block " + text(launch.block) + " exceeds " + text(gpu.block) + " or " +
                       std::to_string(gpu.threads_per_block) + " threads");
  }
  if (kernel.max_threads > 0 && threads > kernel.max_threads) {
    problems.push_back("block of " + std::to_string(threads) + " threads exceeds its " +
                       "__launch_bounds__ of " + std::to_string(kernel.max_threads));
  }
  if (kernel.registers > gpu.registers_per_thread) {
    problems.push_back(std::to_string(kernel.registers) + " registers per thread exceed " +
                       std::to_string(gpu.registers_per_thread));
  }
  const int64_t registers = block_registers(kernel.registers, threads, gpu);
  if (registers > gpu.registers_per_block) {
    problems.push_back(std::to_string(kernel.registers) + " registers x " +
                       std::to_string(threads) + " threads need " + std::to_string(registers) +
                       " registers, more than a block's " +
                       std::to_string(gpu.registers_per_block));
  }
  const int64_t shared = kernel.static_shared_bytes + launch.dynamic_shared_bytes;
  if (shared > gpu.shared_bytes_per_block) {
    problems.push_back(std::to_string(kernel.static_shared_bytes) + " static + " +
                       std::to_string(launch.dynamic_shared_bytes) +
                       " dynamic bytes of shared memory exceed " +
                       std::to_string(gpu.shared_bytes_per_block) + " (no opt-in)");
  }
  const Dim3& grid = launch.max_grid;
  if (grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.x > gpu.grid.x || grid.y > gpu.grid.y ||
      grid.z > gpu.grid.z) {
    problems.push_back("largest grid " + text(grid) + " is outside (1, 1, 1).." + text(gpu.grid));
  }
  return problems;
}

const KernelLaunch* row_of(const std::string& name) {
  for (const KernelLaunch& launch : cuda::kKernelLaunches) {
    if (launch.kernel == name) return &launch;
  }
  return nullptr;
}

std::vector<CompiledKernel>& compiled_kernels() {
  static std::vector<CompiledKernel> kernels;
  return kernels;
}

TEST(LaunchLimits, ObjectsHoldSm90Kernels) {
  const bool sm90 = std::any_of(compiled_kernels().begin(), compiled_kernels().end(),
                                [](const CompiledKernel& k) { return k.arch == 90; });
  EXPECT_TRUE(sm90) << "the objects listed hold no sm_90 (H100) kernels: is 90 in "
                       "OMPQ_CUDA_ARCHS?";
}

TEST(LaunchLimits, EveryCompiledKernelHasARow) {
  std::set<std::string> missing;
  for (const CompiledKernel& k : compiled_kernels()) {
    if (row_of(k.name) == nullptr) missing.insert(k.name + " (" + k.object + ")");
  }
  for (const std::string& name : missing) {
    ADD_FAILURE() << "kernel " << name << " is not in cuda/launch_table.h: add its launch "
                  << "configuration there, from the constants its launcher uses";
  }
}

TEST(LaunchLimits, EveryRowNamesOneCompiledKernel) {
  std::set<std::string_view> seen;
  for (const KernelLaunch& launch : cuda::kKernelLaunches) {
    EXPECT_TRUE(seen.insert(launch.kernel).second) << launch.kernel << " has two rows";
    const bool compiled =
        std::any_of(compiled_kernels().begin(), compiled_kernels().end(),
                    [&](const CompiledKernel& k) { return k.name == launch.kernel; });
    EXPECT_TRUE(compiled) << "cuda/launch_table.h names " << launch.kernel
                          << ", which no object defines";
  }
}

TEST(LaunchLimits, EveryLaunchFitsTheH100) {
  for (const CompiledKernel& k : compiled_kernels()) {
    const KernelLaunch* launch = row_of(k.name);
    if (launch == nullptr) continue;  // EveryCompiledKernelHasARow reports it
    for (const std::string& problem : launch_problems(k, *launch, kH100)) {
      ADD_FAILURE() << k.symbol << " (" << k.name << " in " << k.object << ", " << k.registers
                    << " registers, " << k.static_shared_bytes
                    << " static shared bytes): " << problem;
    }
  }
}

// The checks themselves, on made-up kernels: each limit is caught alone.
TEST(LaunchLimits, EachLimitIsChecked) {
  CompiledKernel kernel;
  kernel.registers = 64;
  kernel.static_shared_bytes = 1024;
  KernelLaunch launch{"k", {256}, 0, {1000, 10, 1}};
  EXPECT_TRUE(launch_problems(kernel, launch, kH100).empty());

  auto only_problem = [&](const CompiledKernel& k, const KernelLaunch& l) {
    const auto problems = launch_problems(k, l, kH100);
    EXPECT_EQ(problems.size(), 1u);
    return problems.empty() ? std::string() : problems[0];
  };
  KernelLaunch wide = launch;
  wide.block = {2048};
  CompiledKernel light = kernel;
  light.registers = 16;  // so that only the block size is wrong
  EXPECT_NE(only_problem(light, wide).find("exceeds (1024, 1024, 64) or 1024 threads"),
            std::string::npos);
  KernelLaunch deep = launch;
  deep.block = {1, 1, 128};
  EXPECT_NE(only_problem(kernel, deep).find("block (1, 1, 128)"), std::string::npos);

  CompiledKernel bounded = kernel;
  bounded.max_threads = 128;
  EXPECT_NE(only_problem(bounded, launch).find("__launch_bounds__ of 128"), std::string::npos);

  KernelLaunch full = launch;
  full.block = {1024};  // 64 registers x 1024 threads = 65536: fits exactly
  EXPECT_TRUE(launch_problems(kernel, full, kH100).empty());
  CompiledKernel heavy = kernel;
  heavy.registers = 65;  // rounds up to 72 per thread: 73728 per block
  EXPECT_NE(only_problem(heavy, full).find("need 73728 registers"), std::string::npos);
  CompiledKernel greedy = kernel;
  greedy.registers = 256;
  KernelLaunch one_warp = launch;
  one_warp.block = {32};
  EXPECT_NE(only_problem(greedy, one_warp).find("256 registers per thread exceed 255"),
            std::string::npos);

  KernelLaunch dynamic = launch;
  dynamic.dynamic_shared_bytes = 47 * 1024 + 1;
  EXPECT_NE(only_problem(kernel, dynamic).find("1024 static + 48129 dynamic"), std::string::npos);

  KernelLaunch tall = launch;
  tall.max_grid = {1, 65536, 1};
  EXPECT_NE(only_problem(kernel, tall).find("largest grid (1, 65536, 1)"), std::string::npos);
  KernelLaunch long_grid = launch;
  long_grid.max_grid = {int64_t{1} << 31};
  EXPECT_EQ(launch_problems(kernel, long_grid, kH100).size(), 1u);
  KernelLaunch empty = launch;
  empty.max_grid = {0};
  EXPECT_EQ(launch_problems(kernel, empty, kH100).size(), 1u);
}

TEST(LaunchLimits, FunctionNameDropsWhatInstancesDoNotShare) {
  EXPECT_EQ(function_name("void ompq::cuda::(anonymous namespace)::softmax_rows_kernel<true, "
                          "float>(float*, float const*, long, long)"),
            "ompq::cuda::softmax_rows_kernel");
  EXPECT_EQ(function_name("ompq::cuda::(anonymous namespace)::sum_kernel(double*, long)"),
            "ompq::cuda::sum_kernel");
  EXPECT_EQ(function_name("void ompq::cuda::strided_loop_kernel<1, unsigned int, "
                          "ompq::cuda::(anonymous namespace)::Fill<float> >(unsigned int, "
                          "ompq::cuda::StridedIndexer<1, unsigned int>, ompq::cuda::(anonymous "
                          "namespace)::Fill<float>)"),
            "ompq::cuda::strided_loop_kernel");
}

// read_kernels' error for `path`, or "" when it reads the file.
std::string read_error(const std::string& path) {
  try {
    read_kernels(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(CubinReader, NamesTheFileItCannotRead) {
  const testing::ScopedTempDir dir;
  EXPECT_EQ(read_error(dir.file("missing.o")), dir.file("missing.o") + ": cannot be opened");
  std::ofstream(dir.file("text.o")) << "plain text, not ELF";
  EXPECT_EQ(read_error(dir.file("text.o")),
            dir.file("text.o") + ": not a 64-bit little-endian ELF file");
}

}  // namespace
}  // namespace ompq::launch_check

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc != 2) {
    std::cerr << "usage: launch_limits_test OBJECT_LIST (a file naming ompq_cuda's objects, one a "
                 "line)\n";
    return 2;
  }
  std::ifstream list(argv[1]);
  if (!list) {
    std::cerr << argv[1] << ": cannot be opened (expected the list of ompq_cuda's objects)\n";
    return 2;
  }
  try {
    for (std::string path; std::getline(list, path);) {
      if (path.empty()) continue;
      auto found = ompq::launch_check::read_kernels(path);
      auto& kernels = ompq::launch_check::compiled_kernels();
      kernels.insert(kernels.end(), found.begin(), found.end());
    }
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  return RUN_ALL_TESTS();
}
