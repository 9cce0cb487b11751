// The launch configuration of every kernel family in cuda/: block shapes and the host functions
// that size grids, used by the launchers themselves. cuda/launch_table.h lists, from these, what
// each kernel can be launched with, and tests/launch/ checks that against the compiled kernels'
// resources and the GPU's limits, so that a launch which could not run fails the tests here.
// Plain C++ (no CUDA headers): the check reads it without the toolkit.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ompq::cuda {

// CUDA's largest grid: x < 2^31, y and z <= 65535.
constexpr int64_t kMaxGridX = (int64_t{1} << 31) - 1;
constexpr int64_t kMaxGridYZ = 65535;

struct Dim3 {
  int64_t x = 1, y = 1, z = 1;
  constexpr int64_t count() const { return x * y * z; }
};

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Grid-stride loops (launch.cuh, channel_loop.cuh) and the kernels that combine per-block partial
// results (reduction splits, AdaRound's regularizer).
constexpr int kBlockThreads = 256;

// Blocks for a grid-stride loop over n items: as many as the items need, capped at a few waves of
// fully occupied SMs (2048 threads each), beyond which more blocks only cost scheduling.
constexpr int64_t grid_stride_blocks(int64_t n, int sm_count) {
  const int64_t cap = int64_t{sm_count} * (2048 / kBlockThreads) * 4;
  return std::max<int64_t>(1, std::min(ceil_div(n, kBlockThreads), cap));
}

// Splits of a reduced range over gridDim.y: enough blocks for `target_blocks` when the outputs
// give only `output_blocks`, at most one split per `min_split` values, at most a grid's y.
constexpr int64_t split_count(int64_t output_blocks, int64_t target_blocks, int64_t values,
                              int64_t min_split) {
  if (output_blocks >= target_blocks) return 1;
  return std::max<int64_t>(
      1, std::min({ceil_div(target_blocks, std::max<int64_t>(output_blocks, 1)), values / min_split,
                   kMaxGridYZ}));
}

// Batch norm (norm_kernels.cu).
namespace norm_launch {
// Channel sums: planar, a block of kSumThreads per (channel, split), the x blocks looping over
// channels; interleaved, a block of kTileChannels x kTileRows per (tile of channels, split).
constexpr int kSumThreads = 256;
constexpr int kTileChannels = 32;
constexpr int kTileRows = kSumThreads / kTileChannels;
constexpr int64_t kMinSplitValues = 4096;  // values per block, at least, when a channel is split
constexpr int64_t sum_target_blocks(int sm_count) { return int64_t{sm_count} * 4; }
// x blocks of the channel sums: planar blocks loop over channels; interleaved ones need one block
// per tile, so the launcher refuses more than kMaxInterleavedChannels channels.
constexpr int64_t kMaxInterleavedChannels = kMaxGridX * kTileChannels;
constexpr int64_t sum_grid_x(int64_t channels, bool interleaved, int sm_count) {
  return interleaved ? ceil_div(channels, kTileChannels)
                     : std::min(channels, sum_target_blocks(sm_count) * 8);
}
// Splits of each channel's `count` values (rows when interleaved) over gridDim.y.
constexpr int64_t sum_splits(int64_t channels, int64_t count, bool interleaved, int sm_count) {
  // Blocks per split: one per channel (planar), one per tile of channels (interleaved), whose
  // blocks each read up to kTileChannels values per row.
  const int64_t blocks = interleaved ? ceil_div(channels, kTileChannels) : channels;
  const int64_t values = count * (interleaved ? std::min<int64_t>(channels, kTileChannels) : 1);
  return split_count(blocks, sum_target_blocks(sm_count), values, kMinSplitValues);
}
// Per-channel coefficients: one thread per channel, blocks of kBlockThreads looping over channels.
constexpr int64_t channel_blocks(int64_t channels) {
  return std::max<int64_t>(1, std::min<int64_t>(ceil_div(channels, kBlockThreads), 4096));
}
}  // namespace norm_launch

// Quantization's per-channel sums (quant_kernels.cu): block (row, split) of kSumThreads; one x
// block per row, so the launcher refuses more than kMaxGridX rows.
namespace quant_launch {
constexpr int kSumThreads = 256;
constexpr int64_t kMinSplitElements = 8192;  // elements per sum block, at least, when split
// Splits of each row: enough blocks to fill the GPU a few times over, none shorter than about
// kMinSplitElements elements.
constexpr int64_t sum_splits(int64_t rows, int64_t per_channel, int sm_count) {
  const int64_t by_size = ceil_div(per_channel, kMinSplitElements);
  const int64_t by_occupancy = ceil_div(int64_t{sm_count} * 8, std::max<int64_t>(rows, 1));
  return std::max<int64_t>(1, std::min({by_size, by_occupancy, kMaxGridYZ}));
}
}  // namespace quant_launch

// Reductions (reduce_kernels.cu): reduced-inner, kRowThreads per output; kept-inner, kColOutputs
// adjacent outputs x kColSlices slices of the reduced range; the x blocks loop over outputs.
namespace reduce_launch {
constexpr int kRowThreads = 256;
constexpr int kColOutputs = 32;
constexpr int kColSlices = 8;
constexpr int64_t kMinSplitElements = 4096;  // reduced elements per block, at least, when split
constexpr int64_t target_blocks(int sm_count) { return int64_t{sm_count} * 4; }
constexpr int64_t output_blocks(int64_t num_outputs, bool inner_kept) {
  return inner_kept ? ceil_div(num_outputs, kColOutputs) : num_outputs;
}
constexpr int64_t grid_x(int64_t output_blocks, int sm_count) {
  return std::max<int64_t>(1, std::min(output_blocks, target_blocks(sm_count) * 8));
}
}  // namespace reduce_launch

// Softmax and cross-entropy rows (softmax_kernels.cu): a block of kRowThreads per row, the blocks
// looping over rows.
namespace softmax_launch {
constexpr int kRowThreads = 128;
constexpr int64_t row_blocks(int64_t rows) {
  return std::max<int64_t>(1, std::min<int64_t>(rows, int64_t{1} << 20));
}
}  // namespace softmax_launch

}  // namespace ompq::cuda
