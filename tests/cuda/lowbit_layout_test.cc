// The packed low-bit GEMM's index math (cuda/lowbit_layout.h) executed on the CPU: a whole grid
// of thread blocks (every warp, every lane) loads its tile slices with the kernel's loaders,
// stores them where the layout puts them, hands each lane's fragment registers to an mma.sync
// m16n8k32 performed per the PTX ISA's fragment tables (written here from the ISA's description,
// independently of the code under test), and stores the accumulators by the layout's C mapping;
// the result must equal the CPU reference (ops::packed_conv2d) at ragged shapes, every bit width
// and split K, for NCHW and channels_last inputs and outputs, k x k kernels with stride, padding,
// dilation and groups, with the A loads as wide as channels and alignment allow. So a wrong lane
// mapping, slice, reduction order, packing offset, split or gather address fails here, without a
// GPU.
// Also: the shared-memory accesses are free of bank conflicts, and split K covers K exactly once.
#include "cuda/lowbit_layout.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/ops/integer.h"
#include "core/ops/memory_format.h"
#include "cuda_test_util.h"

namespace ompq::cuda::lowbit {
namespace {

using testing::ConvCase;
using testing::random_integers;

// ---- mma.sync.aligned.m16n8k32.row.col.s32.{s8,u8}.u8.s32, per the PTX ISA ----------------------
// groupID = laneid >> 2, threadID_in_group = laneid % 4. Element i of a fragment is byte i % 4 of
// register i / 4.
struct Element {
  int row, col;
};

// A (16 x 32, row-major): a0..a15. Rows groupID for a0..a3 and a8..a11, groupID + 8 otherwise;
// column threadID_in_group * 4 + (i & 3), plus 16 for i >= 8.
Element isa_a_element(int lane, int i) {
  const int group_id = lane >> 2, thread_in_group = lane % 4;
  const bool upper_rows = (i >= 4 && i < 8) || i >= 12;
  return {group_id + (upper_rows ? 8 : 0), thread_in_group * 4 + (i & 3) + (i >= 8 ? 16 : 0)};
}

// B (32 x 8, column-major): b0..b7. Row (k) threadID_in_group * 4 + (i & 3), plus 16 for i >= 4;
// column groupID.
Element isa_b_element(int lane, int i) {
  const int group_id = lane >> 2, thread_in_group = lane % 4;
  return {thread_in_group * 4 + (i & 3) + (i >= 4 ? 16 : 0), group_id};
}

// C/D (16 x 8, s32): c0..c3. Row groupID for c0, c1 and groupID + 8 for c2, c3; column
// threadID_in_group * 2 + (i & 1).
Element isa_c_element(int lane, int i) {
  const int group_id = lane >> 2, thread_in_group = lane % 4;
  return {group_id + (i >= 2 ? 8 : 0), thread_in_group * 2 + (i & 1)};
}

uint8_t byte_of(uint32_t word, int b) { return static_cast<uint8_t>(word >> (8 * b)); }

// One warp-wide mma: d[lane] += A * B with A and B assembled from the lanes' registers.
void execute_mma(bool a_signed, const uint32_t (&a)[kWarpSize][4],
                 const uint32_t (&b)[kWarpSize][2], uint32_t (&d)[kWarpSize][4]) {
  int64_t A[kMmaM][kMmaK], B[kMmaK][kMmaN];
  for (int lane = 0; lane < kWarpSize; ++lane) {
    for (int i = 0; i < 16; ++i) {
      const Element e = isa_a_element(lane, i);
      const uint8_t v = byte_of(a[lane][i / 4], i % 4);
      A[e.row][e.col] = a_signed ? static_cast<int8_t>(v) : v;
    }
    for (int i = 0; i < 8; ++i) {
      const Element e = isa_b_element(lane, i);
      B[e.row][e.col] = byte_of(b[lane][i / 4], i % 4);
    }
  }
  for (int lane = 0; lane < kWarpSize; ++lane) {
    for (int i = 0; i < 4; ++i) {
      const Element e = isa_c_element(lane, i);
      int64_t sum = 0;
      for (int k = 0; k < kMmaK; ++k) sum += A[e.row][k] * B[k][e.col];
      d[lane][i] += static_cast<uint32_t>(sum);
    }
  }
}

TEST(LowbitLayout, IsaTablesCoverEveryElementOnce) {
  std::set<std::pair<int, int>> a, b, c;
  for (int lane = 0; lane < kWarpSize; ++lane) {
    for (int i = 0; i < 16; ++i) a.insert({isa_a_element(lane, i).row, isa_a_element(lane, i).col});
    for (int i = 0; i < 8; ++i) b.insert({isa_b_element(lane, i).row, isa_b_element(lane, i).col});
    for (int i = 0; i < 4; ++i) c.insert({isa_c_element(lane, i).row, isa_c_element(lane, i).col});
  }
  EXPECT_EQ(a.size(), size_t{kMmaM * kMmaK});
  EXPECT_EQ(b.size(), size_t{kMmaK * kMmaN});
  EXPECT_EQ(c.size(), size_t{kMmaM * kMmaN});
}

// The layout's fragment coordinates name, for every lane and register, the elements the ISA puts
// there (4 consecutive k per 8-bit register).
TEST(LowbitLayout, FragmentCoordinatesMatchTheIsaTables) {
  for (int lane = 0; lane < kWarpSize; ++lane) {
    SCOPED_TRACE(absl::StrCat("lane ", lane));
    for (int i = 0; i < 16; ++i) {
      const TileCoord c = a_fragment_coord(lane, i / 4);
      const Element e = isa_a_element(lane, i);
      EXPECT_EQ(c.row, e.row) << "a" << i;
      EXPECT_EQ(c.col + i % 4, e.col) << "a" << i;
    }
    for (int i = 0; i < 8; ++i) {
      const TileCoord c = b_fragment_coord(lane, i / 4);  // (n, k)
      const Element e = isa_b_element(lane, i);           // (k, n)
      EXPECT_EQ(c.row, e.col) << "b" << i;
      EXPECT_EQ(c.col + i % 4, e.row) << "b" << i;
    }
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(c_fragment_coord(lane, i).row, isa_c_element(lane, i).row) << "c" << i;
      EXPECT_EQ(c_fragment_coord(lane, i).col, isa_c_element(lane, i).col) << "c" << i;
    }
  }
}

// ---- shared-memory banks ----------------------------------------------------------------------

// Wavefronts one warp-wide shared-memory access of `access_bytes` per lane takes, in the usual
// model: the lanes are served in phases of 128 bytes (all 32 lanes for 4-byte accesses, 8 for
// 16-byte ones); within a phase, different 4-byte words in one bank (word % 32) are served one
// after another, lanes reading the same word share it.
int shared_wavefronts(const std::array<int, kWarpSize>& byte_offsets, int access_bytes) {
  const int lanes_per_phase = 128 / access_bytes;
  int wavefronts = 0;
  for (int first = 0; first < kWarpSize; first += lanes_per_phase) {
    std::array<std::set<int>, 32> words_in_bank;
    for (int lane = first; lane < first + lanes_per_phase; ++lane) {
      for (int byte = 0; byte < access_bytes; byte += 4) {
        const int word = (byte_offsets[lane] + byte) / 4;
        words_in_bank[word % 32].insert(word);
      }
    }
    size_t most = 0;
    for (const auto& words : words_in_bank) most = std::max(most, words.size());
    wavefronts += static_cast<int>(most);
  }
  return wavefronts;
}

// The fewest wavefronts a warp-wide access can take: 32 lanes x access_bytes / 128.
int conflict_free_wavefronts(int access_bytes) { return kWarpSize * access_bytes / 128; }

TEST(LowbitLayout, BankModelCountsConflicts) {
  std::array<int, kWarpSize> offsets;
  for (int lane = 0; lane < kWarpSize; ++lane) offsets[lane] = 4 * lane;
  EXPECT_EQ(shared_wavefronts(offsets, 4), 1) << "consecutive words";
  for (int lane = 0; lane < kWarpSize; ++lane) offsets[lane] = 16 * lane;
  EXPECT_EQ(shared_wavefronts(offsets, 16), 4) << "consecutive 16-byte vectors";
  for (int lane = 0; lane < kWarpSize; ++lane) offsets[lane] = 128 * lane;
  EXPECT_EQ(shared_wavefronts(offsets, 4), 32) << "one bank";
  for (int lane = 0; lane < kWarpSize; ++lane) offsets[lane] = 8;
  EXPECT_EQ(shared_wavefronts(offsets, 4), 1) << "one word, broadcast";
  // Two lanes per 80-byte row, 32-bit stores: 16 rows in 8 distinct bank offsets, 4-way.
  for (int lane = 0; lane < kWarpSize; ++lane) offsets[lane] = (lane / 2) * 80 + (lane % 2) * 32;
  EXPECT_EQ(shared_wavefronts(offsets, 4), 4) << "32-bit stores of two slices per 80-byte row";
}

TEST(LowbitLayout, SlicesCoverTheTileOnceWithConflictFreeStores) {
  std::vector<int> writes(kTileBytes, 0);
  for (int warp = 0; warp < kGemmWarps; ++warp) {
    for (int chunk = 0; chunk < kSliceChunks; ++chunk) {
      std::array<int, kWarpSize> offsets;
      for (int lane = 0; lane < kWarpSize; ++lane) {
        const int thread = warp * kWarpSize + lane;
        offsets[lane] = slice_chunk_offset(thread, chunk);
        EXPECT_EQ(offsets[lane] % kChunkBytes, 0) << "thread " << thread;
        for (int b = 0; b < kChunkBytes; ++b) ++writes[offsets[lane] + b];
      }
      EXPECT_EQ(shared_wavefronts(offsets, kChunkBytes), conflict_free_wavefronts(kChunkBytes))
          << "warp " << warp << " chunk " << chunk;
    }
  }
  for (int row = 0; row < kTileM; ++row) {
    for (int col = 0; col < kSmemStride; ++col) {
      ASSERT_EQ(writes[row * kSmemStride + col], col < kTileK ? 1 : 0)
          << "row " << row << " byte " << col;
    }
  }
}

TEST(LowbitLayout, FragmentLoadsAreConflictFree) {
  for (int warp = 0; warp < kGemmWarps; ++warp) {
    const WarpTile tile = warp_tile(warp);
    for (int kk = 0; kk < kTileK; kk += kMmaK) {
      std::array<int, kWarpSize> offsets;
      for (int mt = 0; mt < kWarpMmaM; ++mt) {
        for (int reg = 0; reg < 4; ++reg) {
          for (int lane = 0; lane < kWarpSize; ++lane) {
            offsets[lane] = a_fragment_offset(lane, reg, tile.m + mt * kMmaM, kk);
          }
          EXPECT_EQ(shared_wavefronts(offsets, 4), 1) << "A, warp " << warp << " reg " << reg;
        }
      }
      for (int nt = 0; nt < kWarpMmaN; ++nt) {
        for (int reg = 0; reg < 2; ++reg) {
          for (int lane = 0; lane < kWarpSize; ++lane) {
            offsets[lane] = b_fragment_offset(lane, reg, tile.n + nt * kMmaN, kk);
          }
          EXPECT_EQ(shared_wavefronts(offsets, 4), 1) << "B, warp " << warp << " reg " << reg;
        }
      }
    }
  }
}

// ---- split K ----------------------------------------------------------------------------------

TEST(LowbitLayout, SplitKCoversEveryTileOnce) {
  for (int k = 1; k <= 64 * 80; k += 37) {
    const int k_tiles = k_tile_count(k);
    for (int64_t blocks : {1, 3, 40, 264, 1000}) {
      for (int sm_count : {1, 16, 132}) {
        SCOPED_TRACE(absl::StrCat("K ", k, ", ", blocks, " output blocks, ", sm_count, " SMs"));
        const SplitK plan = plan_split_k(blocks, k_tiles, sm_count);
        ASSERT_GE(plan.splits, 1);
        ASSERT_LE(plan.splits, kMaxSplits);
        if (plan.splits > 1) {
          EXPECT_GE(plan.tiles_per_split, kMinSplitKTiles);
          EXPECT_LT(blocks * (plan.splits - 1), 2 * int64_t{sm_count}) << "split more than needed";
        }
        int next = 0, products = 0;
        for (int split = 0; split < plan.splits; ++split) {
          const KTileRange r = split_k_tiles(split, plan, k_tiles);
          ASSERT_EQ(r.begin, next) << "split " << split;
          ASSERT_LT(r.begin, r.end) << "split " << split << " is empty";
          next = r.end;
          products += split_k_products(k, r);
        }
        EXPECT_EQ(next, k_tiles);
        EXPECT_EQ(products, k);
      }
    }
  }
}

// ---- the reduction order ----------------------------------------------------------------------

// window_position is K's order (i, j, c) of ops::pack_weight_codes, and walking it with
// advance_window_position by any step that divides C/groups meets window_position at every step.
TEST(LowbitLayout, WindowPositionsFollowThePackedWeightOrder) {
  for (const ConvCase& c :
       {ConvCase{1, 12, 5, 5, 4, 2, 3, 1, 0, 1, 1}, ConvCase{1, 48, 5, 5, 4, 3, 3, 1, 0, 1, 3}}) {
    SCOPED_TRACE(c.name());
    const Shape w_shape = {c.o, c.c / c.groups, c.kh, c.kw};
    const ConvGeometry geo =
        conv_geometry({c.n, c.c, c.h, c.w}, true, {c.n, c.o, 4, 3}, false, w_shape, c.params(), 0);
    // Weight codes that name their own (c, i, j); packed, they give K's order.
    std::vector<int32_t> names;
    for (int o = 0; o < c.o; ++o) {
      for (int ch = 0; ch < geo.group_channels; ++ch) {
        for (int i = 0; i < c.kh; ++i) {
          for (int j = 0; j < c.kw; ++j) names.push_back((ch * c.kh + i) * c.kw + j);
        }
      }
    }
    const std::vector<int32_t> packed =
        ops::pack_weight_codes(Tensor::from_vector(names, w_shape), 8, 0).to_vector<int32_t>();
    for (int step : {1, 2, 4, 8, 16}) {
      if (geo.group_channels % step != 0) continue;
      WindowPosition at = window_position(geo, 0);
      for (int k = 0; k < geo.k; k += step) {
        const WindowPosition expected = window_position(geo, k);
        ASSERT_EQ(packed[k], (expected.c * c.kh + expected.i) * c.kw + expected.j) << "k " << k;
        ASSERT_EQ(at.i, expected.i) << "k " << k << ", step " << step;
        ASSERT_EQ(at.j, expected.j) << "k " << k << ", step " << step;
        ASSERT_EQ(at.c, expected.c) << "k " << k << ", step " << step;
        advance_window_position(geo, step, at);
      }
    }
  }
}

// ---- a whole grid on the CPU ------------------------------------------------------------------

// The kernel's data movement for every block of the grid, with 132 SMs deciding split K. Every
// byte a fragment load reads must have been stored by a slice of the same tile.
template <typename XCode, int kBits>
std::vector<int32_t> run_grid(const XCode* x, int32_t x_zero_point, const PackedWeightView& w,
                              const ConvGeometry& geo) {
  constexpr bool kASigned = std::is_same_v<XCode, int8_t>;
  const PackedGemmLaunch launch = packed_gemm_launch(geo, 132);
  std::vector<uint32_t> out(
      static_cast<size_t>(geo.batch) * geo.out_channels * geo.out_h * geo.out_w, 0);
  const uint8_t pad = static_cast<uint8_t>(x_zero_point);
  for (int bz = 0; bz < launch.grid_z; ++bz) {
    for (int by = 0; by < launch.grid_y; ++by) {
      for (int bx = 0; bx < launch.grid_x; ++bx) {
        const BlockTile block = block_tile(bx, by, bz, launch.split.splits);
        const KTileRange tiles = split_k_tiles(block.split, launch.split, k_tile_count(geo.k));
        std::vector<uint8_t> a_tile(kTileBytes), b_tile(kTileBytes);
        std::vector<int> a_sum(kGemmThreads, 0), b_sum(kGemmThreads, 0);
        uint32_t acc[kGemmWarps][kWarpMmaM][kWarpMmaN][kWarpSize][4] = {};
        for (int tile = tiles.begin; tile < tiles.end; ++tile) {
          std::vector<bool> stored(kTileBytes, false);
          for (int thread = 0; thread < kGemmThreads; ++thread) {
            const TileSlice slice = tile_slice(thread);
            const int k_begin = tile * kTileK + slice.k_offset;
            const int o_local = block.n0 + slice.row;
            uint32_t a_words[8], b_words[8];
            load_a_slice(a_words, x, geo, block.group, block.m0 + slice.row, k_begin, pad);
            load_b_slice<kBits>(b_words, w, geo, block.group * geo.group_out + o_local, o_local,
                                k_begin);
            a_sum[thread] += slice_byte_sum<kASigned>(a_words);
            b_sum[thread] += slice_byte_sum<false>(b_words);
            for (int chunk = 0; chunk < kSliceChunks; ++chunk) {
              const int offset = slice_chunk_offset(thread, chunk);
              std::memcpy(&a_tile[offset], a_words + 4 * chunk, kChunkBytes);
              std::memcpy(&b_tile[offset], b_words + 4 * chunk, kChunkBytes);
              for (int b = 0; b < kChunkBytes; ++b) stored[offset + b] = true;
            }
          }
          auto shared_word = [&](const std::vector<uint8_t>& t, int offset) {
            EXPECT_TRUE(stored[offset] && stored[offset + 3]) << "byte " << offset << " not stored";
            uint32_t word;
            std::memcpy(&word, &t[offset], 4);
            return word;
          };
          for (int warp = 0; warp < kGemmWarps; ++warp) {
            const WarpTile wt = warp_tile(warp);
            for (int kk = 0; kk < kTileK; kk += kMmaK) {
              for (int mt = 0; mt < kWarpMmaM; ++mt) {
                for (int nt = 0; nt < kWarpMmaN; ++nt) {
                  uint32_t a[kWarpSize][4], b[kWarpSize][2];
                  for (int lane = 0; lane < kWarpSize; ++lane) {
                    for (int reg = 0; reg < 4; ++reg) {
                      a[lane][reg] =
                          shared_word(a_tile, a_fragment_offset(lane, reg, wt.m + mt * kMmaM, kk));
                    }
                    for (int reg = 0; reg < 2; ++reg) {
                      b[lane][reg] =
                          shared_word(b_tile, b_fragment_offset(lane, reg, wt.n + nt * kMmaN, kk));
                    }
                  }
                  execute_mma(kASigned, a, b, acc[warp][mt][nt]);
                }
              }
            }
          }
        }
        // Row sums per tile row from the slices that hold it (each row: kSlicesPerRow threads).
        std::vector<int> row_sum(kTileM, 0), col_sum(kTileN, 0);
        for (int thread = 0; thread < kGemmThreads; ++thread) {
          row_sum[tile_slice(thread).row] += a_sum[thread];
          col_sum[tile_slice(thread).row] += b_sum[thread];
        }
        const int products = split_k_products(geo.k, tiles);
        for (int warp = 0; warp < kGemmWarps; ++warp) {
          const WarpTile wt = warp_tile(warp);
          for (int mt = 0; mt < kWarpMmaM; ++mt) {
            for (int nt = 0; nt < kWarpMmaN; ++nt) {
              for (int lane = 0; lane < kWarpSize; ++lane) {
                for (int i = 0; i < 4; ++i) {
                  const TileCoord c = c_fragment_coord(lane, i);
                  const int row = wt.m + mt * kMmaM + c.row, col = wt.n + nt * kMmaN + c.col;
                  const int m = block.m0 + row, o_local = block.n0 + col;
                  if (m >= geo.m || o_local >= geo.group_out) continue;
                  const int o = block.group * geo.group_out + o_local;
                  const uint32_t zw = static_cast<uint32_t>(
                      (w.zero_point != nullptr ? w.zero_point[o] : 0) - w.qmin);
                  out[output_index(geo, m, o)] += centred_accumulator(
                      acc[warp][mt][nt][lane][i], zw, static_cast<uint32_t>(x_zero_point),
                      row_sum[row], col_sum[col], products);
                }
              }
            }
          }
        }
      }
    }
  }
  return std::vector<int32_t>(out.begin(), out.end());
}

template <typename XCode>
std::vector<int32_t> run_grid_bits(const XCode* x, int32_t x_zero_point, const PackedWeightView& w,
                                   const ConvGeometry& geo) {
  switch (w.bits) {
    case 2:
      return run_grid<XCode, 2>(x, x_zero_point, w, geo);
    case 3:
      return run_grid<XCode, 3>(x, x_zero_point, w, geo);
    case 4:
      return run_grid<XCode, 4>(x, x_zero_point, w, geo);
    case 5:
      return run_grid<XCode, 5>(x, x_zero_point, w, geo);
    case 6:
      return run_grid<XCode, 6>(x, x_zero_point, w, geo);
    case 7:
      return run_grid<XCode, 7>(x, x_zero_point, w, geo);
    default:
      return run_grid<XCode, 8>(x, x_zero_point, w, geo);
  }
}

// How the simulated kernel finds x and writes out: x NCHW or channels_last, starting
// `x_offset` bytes past a 16-byte boundary (so that the vector width drops), out NCHW or NHWC.
struct Placement {
  bool x_channels_last = false;
  int x_offset = 0;
  bool out_channels_last = false;
  std::string name() const {
    return absl::StrCat(x_channels_last ? "x NHWC" : "x NCHW", " at +", x_offset,
                        out_channels_last ? ", out NHWC" : ", out NCHW");
  }
};

// x's codes in their memory order, copied `x_offset` bytes past a 16-byte boundary.
class PlacedCodes {
 public:
  PlacedCodes(const Tensor& x, const Placement& placement)
      : blocks_((x.numel() + placement.x_offset) / sizeof(Block) + 1) {
    const Tensor stored = in_memory_format(x, placement.x_channels_last);
    data_ = reinterpret_cast<uint8_t*>(blocks_.data()) + placement.x_offset;
    std::memcpy(data_, stored.data_ptr(), static_cast<size_t>(x.numel()));
  }
  const void* data() const { return data_; }

 private:
  struct alignas(16) Block {
    uint8_t bytes[16];
  };
  std::vector<Block> blocks_;
  uint8_t* data_;
};

// One layer at one bit width: the simulated grid against ops::packed_conv2d (NCHW in and out),
// with the A loads `load_bytes` wide. The bits of `variant` pick signed weight codes, weight zero
// points and i8 activations.
void check_grid(const ConvCase& c, int bits, int variant, const Placement& placement,
                int load_bytes, uint64_t& seed) {
  const bool signed_weights = variant % 2 == 1, weight_zero_point = (variant / 2) % 2 == 1;
  const DType x_dtype = (variant / 4) % 2 == 1 ? DType::kI8 : DType::kU8;
  SCOPED_TRACE(absl::StrCat(c.name(), " W", bits, signed_weights ? " signed" : " unsigned",
                            weight_zero_point ? " with zero points" : "", " x ",
                            dtype_name(x_dtype), ", ", placement.name()));
  const int64_t x_lo = x_dtype == DType::kI8 ? -128 : 0;
  const Tensor x = random_integers({c.n, c.c, c.h, c.w}, x_dtype, seed++, x_lo, x_lo + 255);
  const int32_t x_zero_point =
      random_integers({}, DType::kI32, seed++, x_lo, x_lo + 255).item<int32_t>();
  const int64_t qmin = signed_weights ? -(int64_t{1} << (bits - 1)) : 0;
  const int64_t qmax = qmin + (int64_t{1} << bits) - 1;
  const Shape w_shape = {c.o, c.c / c.groups, c.kh, c.kw};
  PackedWeight w;
  w.packed = ops::pack_weight_codes(
      random_integers(w_shape, signed_weights ? DType::kI8 : DType::kU8, seed++, qmin, qmax), bits,
      qmin);
  w.shape = w_shape;
  w.bits = bits;
  w.qmin = qmin;
  if (weight_zero_point) w.zero_point = random_integers({c.o}, DType::kI32, seed++, qmin, qmax);
  const Tensor expected = ops::packed_conv2d(x, x_zero_point, w, c.params());

  const PlacedCodes placed(x, placement);
  const ConvGeometry geo = conv_geometry(x.shape(), placement.x_channels_last, expected.shape(),
                                         placement.out_channels_last, w_shape, c.params(),
                                         reinterpret_cast<uintptr_t>(placed.data()));
  ASSERT_GT(geo.group_channels, 1) << "a depthwise layer does not run the GEMM";
  ASSERT_EQ(geo.a_load_bytes, load_bytes);
  ASSERT_EQ(a_slice_loads(geo), kSliceBytes / load_bytes);
  const PackedWeightView view{
      w.packed.data<uint8_t>(),
      w.packed.size(1),
      w.packed.size(1) % 4 == 0 && reinterpret_cast<uintptr_t>(w.packed.data_ptr()) % 4 == 0,
      bits,
      static_cast<int32_t>(qmin),
      weight_zero_point ? w.zero_point.data<int32_t>() : nullptr};
  const std::vector<int32_t> actual =
      x_dtype == DType::kI8
          ? run_grid_bits(static_cast<const int8_t*>(placed.data()), x_zero_point, view, geo)
          : run_grid_bits(static_cast<const uint8_t*>(placed.data()), x_zero_point, view, geo);
  // Back to NCHW order, element by element through the layout's own output index.
  std::vector<double> nchw(actual.size());
  const int64_t positions = int64_t{geo.out_h} * geo.out_w;
  for (int m = 0; m < geo.m; ++m) {
    for (int o = 0; o < geo.out_channels; ++o) {
      nchw[(m / positions * geo.out_channels + o) * positions + m % positions] =
          actual[output_index(geo, m, o)];
    }
  }
  testing::expect_equal(expected, Tensor::from_vector(nchw, expected.shape()), "accumulators");
}

// Linear layers (1x1 on 1x1 images: rows of contiguous channels, 16-byte vectors when K % 16 == 0;
// a 3x3 kernel on 1x1 images reads its centre tap's channels so and pads the rest) and
// convolutions (the bytewise gather): M, N and K not multiples of the tiles, K split over blocks
// (few output tiles and 36 or 64 k tiles), stride, padding, dilation, groups.
struct GridCase {
  ConvCase layer;
  int load_bytes;  // of the A gather, x 16-byte aligned
};
const GridCase kNchwCases[] = {
    {{67, 513, 1, 1, 33, 1, 1, 1, 0, 1, 1}, 1}, {{5, 96, 1, 1, 70, 1, 1, 1, 0, 1, 1}, 16},
    {{3, 4096, 1, 1, 9, 1, 1, 1, 0, 1, 1}, 16}, {{4, 72, 1, 1, 20, 1, 1, 1, 0, 1, 1}, 8},
    {{6, 48, 1, 1, 20, 3, 3, 1, 1, 1, 1}, 16},  {{2, 16, 9, 11, 33, 3, 3, 2, 1, 1, 1}, 1},
    {{3, 37, 8, 8, 129, 3, 3, 1, 2, 2, 1}, 1},  {{2, 8, 10, 10, 12, 3, 3, 1, 1, 1, 4}, 1},
    {{1, 256, 5, 5, 64, 3, 3, 2, 1, 1, 1}, 1},  {{1, 3, 31, 29, 16, 7, 7, 2, 3, 1, 1}, 1},
    {{2, 64, 17, 17, 65, 1, 1, 2, 0, 1, 1}, 1},
};

TEST(LowbitLayout, AGridOfThreadBlocksComputesTheCpuReference) {
  uint64_t seed = 21000;
  int index = 0;
  for (const GridCase& c : kNchwCases) {
    for (int bits = 2; bits <= 8; ++bits) {
      check_grid(c.layer, bits, 7 * index + bits, Placement{}, c.load_bytes, seed);
      if (::testing::Test::HasFailure()) return;  // one failing layer says enough
    }
    ++index;
  }
}

// channels_last inputs: every kernel size reads a tap's contiguous channels 16, 8 or 4 bytes at a
// time, the widest dividing C and C/groups. 1x1: C = 64, 72, 36, 48 in 2 groups of 24, 96 in 4
// groups of 24, K split over blocks at C = 1024. k x k: C = 16 (a slice spans two taps), 64, 48
// (slices cross taps mid-slice), 24 and 20 (8- and 4-byte runs), 64 in 2 and 4 groups, 48 in 2
// groups of 24, 256 with K split over blocks; 3x3, 5x5, 1x3, 3x1 and 7x7 kernels with stride,
// padding (up to the whole kernel) and dilation. Ragged channel counts (37, 3, groups of 6 or 2)
// gather bytes. Outputs in both layouts.
const GridCase kChannelsLastCases[] = {
    {{2, 64, 9, 7, 70, 1, 1, 1, 0, 1, 1}, 16},  {{2, 72, 9, 9, 33, 1, 1, 2, 1, 1, 1}, 8},
    {{3, 36, 5, 6, 30, 1, 1, 1, 0, 2, 3}, 4},   {{2, 48, 6, 6, 66, 1, 1, 1, 1, 1, 2}, 8},
    {{1, 96, 7, 7, 8, 1, 1, 2, 0, 1, 4}, 8},    {{1, 1024, 3, 3, 64, 1, 1, 1, 0, 1, 1}, 16},
    {{2, 37, 5, 5, 20, 1, 1, 1, 0, 1, 1}, 1},   {{2, 12, 6, 6, 10, 1, 1, 1, 0, 1, 2}, 1},
    {{2, 16, 9, 11, 33, 3, 3, 2, 1, 1, 1}, 16}, {{3, 37, 8, 8, 129, 3, 3, 1, 2, 2, 1}, 1},
    {{2, 8, 10, 10, 12, 3, 3, 1, 1, 1, 4}, 1},  {{1, 64, 6, 6, 16, 3, 3, 1, 1, 1, 1}, 16},
    {{2, 48, 7, 5, 40, 3, 3, 1, 1, 1, 1}, 16},  {{1, 24, 9, 9, 17, 5, 5, 2, 2, 1, 1}, 8},
    {{2, 20, 8, 7, 24, 3, 3, 1, 2, 2, 1}, 4},   {{1, 64, 8, 8, 48, 3, 3, 2, 1, 1, 2}, 16},
    {{2, 64, 6, 6, 32, 3, 3, 1, 1, 1, 4}, 16},  {{1, 48, 7, 7, 20, 3, 3, 1, 3, 1, 2}, 8},
    {{1, 256, 5, 5, 64, 3, 3, 2, 1, 1, 1}, 16}, {{2, 32, 6, 9, 33, 1, 3, 1, 1, 1, 1}, 16},
    {{2, 32, 9, 6, 33, 3, 1, 1, 1, 2, 1}, 16},  {{1, 3, 31, 29, 16, 7, 7, 2, 3, 1, 1}, 1},
};

TEST(LowbitLayout, AGridOfThreadBlocksComputesTheCpuReferenceFromChannelsLastInputs) {
  uint64_t seed = 22000;
  int index = 0;
  for (const GridCase& c : kChannelsLastCases) {
    for (int bits : {2 + index % 4, 8 - index % 3}) {
      const Placement placement{true, 0, index % 2 == 1};
      check_grid(c.layer, bits, 3 * index + bits, placement, c.load_bytes, seed);
      if (::testing::Test::HasFailure()) return;
    }
    ++index;
  }
}

// x starting 8, 4 or 1 bytes past a 16-byte boundary narrows the loads to what its address allows;
// every vector load checks its own alignment, so a wrong address fails.
TEST(LowbitLayout, MisalignedInputsNarrowTheALoads) {
  uint64_t seed = 23000;
  const ConvCase pointwise = {2, 64, 5, 7, 40, 1, 1, 1, 0, 1, 1};
  const ConvCase linear = {9, 160, 1, 1, 33, 1, 1, 1, 0, 1, 1};
  const ConvCase conv3x3 = {2, 32, 6, 5, 24, 3, 3, 1, 1, 1, 1};
  const std::pair<int, int> kOffsetAndLoadBytes[] = {{8, 8}, {4, 4}, {12, 4}, {1, 1}, {2, 1}};
  for (const auto& [offset, load_bytes] : kOffsetAndLoadBytes) {
    check_grid(pointwise, 4, offset, Placement{true, offset, false}, load_bytes, seed);
    check_grid(linear, 3, offset + 1, Placement{false, offset, false}, load_bytes, seed);
    check_grid(conv3x3, 5, offset + 2, Placement{true, offset, true}, load_bytes, seed);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(LowbitLayout, ALoadWidthFollowsTheChannelsAndAlignment) {
  // (C, C/groups, channel stride, address) -> bytes per load, whatever the kernel size.
  EXPECT_EQ(a_load_bytes(64, 64, 1, 0), 16);
  EXPECT_EQ(a_load_bytes(64, 32, 1, 32), 16);
  EXPECT_EQ(a_load_bytes(64, 8, 1, 16), 8) << "groups of 8 channels";
  EXPECT_EQ(a_load_bytes(40, 20, 1, 0), 4);
  EXPECT_EQ(a_load_bytes(64, 64, 1, 4), 4) << "x 4-byte aligned";
  EXPECT_EQ(a_load_bytes(63, 63, 1, 0), 1);
  EXPECT_EQ(a_load_bytes(64, 6, 1, 0), 1) << "groups of 6 channels";
  EXPECT_EQ(a_load_bytes(64, 64, 49, 0), 1) << "NCHW: channels H*W apart";
  EXPECT_THROW(
      {
        uint32_t words[1];
        alignas(16) const uint8_t bytes[8] = {};
        read_global_vector<4>(bytes + 2, words);
      },
      Error);
}

}  // namespace
}  // namespace ompq::cuda::lowbit
