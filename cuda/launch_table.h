// What every __global__ function in cuda/ can be launched with: its block shape, dynamic shared
// memory and the largest grid its launcher can choose, each taken from cuda/launch_config.h, the
// constants and grid functions the launchers call. tests/launch/ compares this table with the
// kernels compiled for sm_90 (registers, shared memory, __launch_bounds__) and with the H100's
// limits; a compiled kernel that the table does not name fails that test too.
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>

#include "cuda/launch_config.h"
#include "cuda/lowbit_layout.h"

namespace ompq::cuda {

struct KernelLaunch {
  // The function's qualified name as its symbol demangles, without "(anonymous namespace)::",
  // template arguments and parameters: every instantiation shares the row. Kernels of the same
  // name in two files (combine_splits_kernel) share it too, so they must share their launch.
  std::string_view kernel;
  Dim3 block;
  int64_t dynamic_shared_bytes;
  Dim3 max_grid;  // the largest grid the launcher can choose, for the largest input it accepts
};

// The largest grids are evaluated for the H100's SMs (grids that grow with the SM count stay far
// below the limits) and for tensors of up to 2^48 elements, more than any GPU holds.
constexpr int kH100SmCount = 132;
constexpr int64_t kLargestNumel = int64_t{1} << 48;

constexpr Dim3 kGridStrideMaxGrid{grid_stride_blocks(kLargestNumel, kH100SmCount)};

// The grid functions are monotone in each argument, so each dimension's largest value is at the
// extremes: most splits with the fewest blocks per split and the most values.
inline constexpr KernelLaunch kKernelLaunches[] = {
    // launch.cuh, channel_loop.cuh: grid-stride loops.
    {"ompq::cuda::strided_loop_kernel", {kBlockThreads}, 0, kGridStrideMaxGrid},
    {"ompq::cuda::per_element_kernel", {kBlockThreads}, 0, kGridStrideMaxGrid},
    // quant_kernels.cu and reduce_kernels.cu: the splits' combination, a grid-stride loop.
    {"ompq::cuda::combine_splits_kernel", {kBlockThreads}, 0, kGridStrideMaxGrid},
    // adaround_kernels.cu: per-block partial sums over a grid-stride loop, then one block.
    {"ompq::cuda::regularizer_partial_kernel", {kBlockThreads}, 0, kGridStrideMaxGrid},
    {"ompq::cuda::sum_partials_kernel", {kBlockThreads}, 0, {1}},
    // norm_kernels.cu.
    {"ompq::cuda::planar_sums_kernel",
     {norm_launch::kSumThreads},
     0,
     {norm_launch::sum_grid_x(kLargestNumel, false, kH100SmCount),
      norm_launch::sum_splits(1, kLargestNumel, false, kH100SmCount)}},
    {"ompq::cuda::interleaved_sums_kernel",
     {norm_launch::kTileChannels, norm_launch::kTileRows},
     0,
     {norm_launch::sum_grid_x(norm_launch::kMaxInterleavedChannels, true, kH100SmCount),
      norm_launch::sum_splits(1, kLargestNumel, true, kH100SmCount)}},
    {"ompq::cuda::forward_channel_kernel",
     {kBlockThreads},
     0,
     {norm_launch::channel_blocks(kLargestNumel)}},
    {"ompq::cuda::backward_channel_kernel",
     {kBlockThreads},
     0,
     {norm_launch::channel_blocks(kLargestNumel)}},
    // quant_kernels.cu: one x block per row, refused beyond kMaxGridX rows.
    {"ompq::cuda::channel_sum_kernel",
     {quant_launch::kSumThreads},
     0,
     {kMaxGridX, quant_launch::sum_splits(1, kLargestNumel, kH100SmCount)}},
    // reduce_kernels.cu.
    {"ompq::cuda::reduce_rows_kernel",
     {reduce_launch::kRowThreads},
     0,
     {reduce_launch::grid_x(kLargestNumel, kH100SmCount),
      split_count(1, reduce_launch::target_blocks(kH100SmCount), kLargestNumel,
                  reduce_launch::kMinSplitElements)}},
    {"ompq::cuda::reduce_columns_kernel",
     {reduce_launch::kColOutputs, reduce_launch::kColSlices},
     0,
     {reduce_launch::grid_x(kLargestNumel, kH100SmCount),
      split_count(1, reduce_launch::target_blocks(kH100SmCount), kLargestNumel,
                  reduce_launch::kMinSplitElements)}},
    // softmax_kernels.cu: row blocks, and one block for the mean loss.
    {"ompq::cuda::softmax_rows_kernel",
     {softmax_launch::kRowThreads},
     0,
     {softmax_launch::row_blocks(kLargestNumel)}},
    {"ompq::cuda::softmax_backward_rows_kernel",
     {softmax_launch::kRowThreads},
     0,
     {softmax_launch::row_blocks(kLargestNumel)}},
    {"ompq::cuda::cross_entropy_rows_kernel",
     {softmax_launch::kRowThreads},
     0,
     {softmax_launch::row_blocks(kLargestNumel)}},
    {"ompq::cuda::cross_entropy_mean_kernel", {softmax_launch::kRowThreads}, 0, {1}},
    // lowbit_kernels.cu: the packed GEMM (lowbit_layout.h's packed_gemm_launch: x over the m
    // tiles of an int M, y and z refused beyond a grid's), the depthwise grid-stride loop.
    {"ompq::cuda::packed_gemm_kernel",
     {lowbit::kGemmThreads},
     lowbit::kGemmDynamicSharedBytes,
     {ceil_div(std::numeric_limits<int32_t>::max(), lowbit::kTileM), kMaxGridYZ, kMaxGridYZ}},
    {"ompq::cuda::packed_depthwise_kernel", {kBlockThreads}, 0, kGridStrideMaxGrid},
};

}  // namespace ompq::cuda
